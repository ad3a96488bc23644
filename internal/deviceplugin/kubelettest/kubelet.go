// Package kubelettest is a fake kubelet for device plugin tests: it serves
// the real v1beta1 Registration service on <dir>/kubelet.sock and dials
// the plugins that register, as the kubelet's device manager does.
package kubelettest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// Kubelet is a running fake kubelet.
type Kubelet struct {
	Dir    string
	server *grpc.Server

	mu   sync.Mutex
	regs []*pluginapi.RegisterRequest
	cond chan struct{} // closed and replaced on every registration
}

type registration struct {
	pluginapi.UnimplementedRegistrationServer
	k *Kubelet
}

func (r registration) Register(_ context.Context, req *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	if req.Version != pluginapi.Version {
		return nil, fmt.Errorf("unsupported version %q", req.Version)
	}
	r.k.mu.Lock()
	r.k.regs = append(r.k.regs, req)
	close(r.k.cond)
	r.k.cond = make(chan struct{})
	r.k.mu.Unlock()
	return &pluginapi.Empty{}, nil
}

// Start serves kubelet.sock in dir, removing the plugin sockets there
// first as the kubelet does when it starts.
func Start(dir string) (*Kubelet, error) {
	k := &Kubelet{Dir: dir, cond: make(chan struct{})}
	if err := k.listen(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Kubelet) listen() error {
	sock := filepath.Join(k.Dir, "kubelet.sock")
	entries, _ := os.ReadDir(k.Dir)
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".sock" {
			os.Remove(filepath.Join(k.Dir, e.Name()))
		}
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	pluginapi.RegisterRegistrationServer(srv, registration{k: k})
	go func() { _ = srv.Serve(l) }()
	k.mu.Lock()
	k.server = srv
	k.mu.Unlock()
	return nil
}

// Restart stops the kubelet and starts it again: a new kubelet.sock, and
// no plugin registered.
func (k *Kubelet) Restart() error {
	k.Stop()
	k.mu.Lock()
	k.regs = nil
	k.mu.Unlock()
	return k.listen()
}

// Stop stops serving and removes kubelet.sock.
func (k *Kubelet) Stop() {
	k.mu.Lock()
	srv := k.server
	k.server = nil
	k.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
	os.Remove(filepath.Join(k.Dir, "kubelet.sock"))
}

// Registrations returns the registrations received so far.
func (k *Kubelet) Registrations() []*pluginapi.RegisterRequest {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]*pluginapi.RegisterRequest(nil), k.regs...)
}

// WaitRegistrations waits until n registrations have been received.
func (k *Kubelet) WaitRegistrations(n int, timeout time.Duration) ([]*pluginapi.RegisterRequest, error) {
	deadline := time.After(timeout)
	for {
		k.mu.Lock()
		regs, cond := append([]*pluginapi.RegisterRequest(nil), k.regs...), k.cond
		k.mu.Unlock()
		if len(regs) >= n {
			return regs, nil
		}
		select {
		case <-cond:
		case <-deadline:
			return regs, fmt.Errorf("%d registration(s) after %v, want %d", len(regs), timeout, n)
		}
	}
}

// Dial connects to a registered plugin's endpoint, as the kubelet does.
func (k *Kubelet) Dial(reg *pluginapi.RegisterRequest) (pluginapi.DevicePluginClient, func(), error) {
	conn, err := grpc.NewClient("unix://"+filepath.Join(k.Dir, reg.Endpoint),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	return pluginapi.NewDevicePluginClient(conn), func() { conn.Close() }, nil
}
