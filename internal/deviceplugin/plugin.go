package deviceplugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// Options says where the plugin serves and how it answers.
type Options struct {
	// PluginDir holds the kubelet's socket and the plugins' sockets
	// (/var/lib/kubelet/device-plugins).
	PluginDir string
	// DeviceListStrategy is one of ListStrategies.
	DeviceListStrategy string
	// CDIKind qualifies the CDI device names (nvidia.com/gpu).
	CDIKind string
	// Topology scores GPU closeness for GetPreferredAllocation.
	Topology Topology
	// Health watches the GPUs; nil means they are always healthy.
	Health HealthMonitor
	// ProbeInterval is how often an unhealthy GPU is probed again, and how
	// long after its last error the first probe comes.
	ProbeInterval time.Duration
	// RetryInterval is how long to wait before registering again after a
	// failed registration.
	RetryInterval time.Duration
	Log           Logger
}

func (o *Options) defaults() {
	if o.PluginDir == "" {
		o.PluginDir = pluginapi.DevicePluginPath
	}
	if o.DeviceListStrategy == "" {
		o.DeviceListStrategy = ListCDIAnnotations
	}
	if o.CDIKind == "" {
		o.CDIKind = DefaultCDIKind
	}
	if o.Topology == nil {
		o.Topology = NUMATopology{}
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = 30 * time.Second
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = nopLogger{}
	}
}

// Run serves one device plugin per resource, registers each with the
// kubelet, and serves and registers them again whenever the kubelet's
// socket is created anew (a kubelet restart), until ctx ends.
func Run(ctx context.Context, resources []Resource, opts Options) error {
	opts.defaults()
	if err := CheckListStrategy(opts.DeviceListStrategy); err != nil {
		return err
	}
	if len(resources) == 0 {
		return errors.New("no GPU to advertise")
	}
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", opts.PluginDir, err)
	}
	defer watcher.Close()
	if err := watcher.Add(opts.PluginDir); err != nil {
		return fmt.Errorf("watch %s: %w", opts.PluginDir, err)
	}
	h := newHealth()
	if opts.Health != nil {
		go h.run(ctx, opts.Health, gpuUUIDs(resources), opts.ProbeInterval, opts.Log)
	}
	plugins := make([]*plugin, len(resources))
	for i, r := range resources {
		plugins[i] = newPlugin(r, opts, h)
	}
	startAll := func() error {
		for _, p := range plugins {
			p.stop()
			if err := p.start(); err != nil {
				return err
			}
		}
		return nil
	}
	defer func() {
		for _, p := range plugins {
			p.stop()
		}
	}()
	if err := startAll(); err != nil {
		return err
	}
	kubeletSock := filepath.Join(opts.PluginDir, "kubelet.sock")
	retry := time.NewTicker(opts.RetryInterval)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-watcher.Events:
			if !ok {
				return errors.New("plugin directory watch ended")
			}
			if ev.Name == kubeletSock && ev.Has(fsnotify.Create) {
				opts.Log.Infof("%s created (kubelet restarted): serving and registering again", kubeletSock)
				if err := startAll(); err != nil {
					return err
				}
			}
		case err, ok := <-watcher.Errors:
			if ok {
				opts.Log.Warnf("watching %s: %v", opts.PluginDir, err)
			}
		case <-retry.C:
			for _, p := range plugins {
				if !p.isRegistered() {
					p.register()
				}
			}
		}
	}
}

func gpuUUIDs(resources []Resource) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range resources {
		for _, d := range r.Devices {
			if d.GPUUUID != "" && !seen[d.GPUUUID] {
				seen[d.GPUUUID] = true
				out = append(out, d.GPUUUID)
			}
		}
	}
	sort.Strings(out)
	return out
}

// plugin serves one resource on its own socket.
type plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	res    Resource
	byID   map[string]Device
	opts   Options
	health *health
	socket string

	mu         sync.Mutex
	server     *grpc.Server
	registered bool
}

func newPlugin(r Resource, opts Options, h *health) *plugin {
	p := &plugin{res: r, opts: opts, health: h, byID: map[string]Device{},
		socket: filepath.Join(opts.PluginDir, SocketName(r.Name))}
	for _, d := range r.Devices {
		p.byID[d.ID] = d
	}
	return p
}

// start serves the plugin's socket and registers it with the kubelet. A
// kubelet that is not there yet is not an error: the plugin registers when
// the kubelet's socket appears, or at the next retry.
func (p *plugin) start() error {
	if err := os.Remove(p.socket); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove stale %s: %w", p.socket, err)
	}
	l, err := net.Listen("unix", p.socket)
	if err != nil {
		return fmt.Errorf("serve %s: %w", p.socket, err)
	}
	srv := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(srv, p)
	go func() { _ = srv.Serve(l) }()
	p.mu.Lock()
	p.server, p.registered = srv, false
	p.mu.Unlock()
	p.register()
	return nil
}

func (p *plugin) stop() {
	p.mu.Lock()
	srv := p.server
	p.server, p.registered = nil, false
	p.mu.Unlock()
	if srv != nil {
		srv.Stop()
		_ = os.Remove(p.socket)
	}
}

func (p *plugin) isRegistered() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.registered || p.server == nil
}

func (p *plugin) register() {
	err := register(filepath.Join(p.opts.PluginDir, "kubelet.sock"), &pluginapi.RegisterRequest{
		Version:      pluginapi.Version,
		Endpoint:     filepath.Base(p.socket),
		ResourceName: p.res.Name,
		Options:      &pluginapi.DevicePluginOptions{GetPreferredAllocationAvailable: true},
	})
	if err != nil {
		p.opts.Log.Warnf("register %s with the kubelet: %v (will retry)", p.res.Name, err)
		return
	}
	p.mu.Lock()
	p.registered = true
	p.mu.Unlock()
	p.opts.Log.Infof("registered %s (%d devices) with the kubelet on %s", p.res.Name, len(p.res.Devices), p.socket)
}

// register registers with the kubelet, trying again for a moment: a
// kubelet.sock that was just created may not be listening yet.
func register(kubeletSock string, req *pluginapi.RegisterRequest) error {
	var err error
	for wait := 50 * time.Millisecond; wait < 2*time.Second; wait *= 2 {
		if err = registerOnce(kubeletSock, req); err == nil {
			return nil
		}
		time.Sleep(wait)
	}
	return err
}

func registerOnce(kubeletSock string, req *pluginapi.RegisterRequest) error {
	if _, err := os.Stat(kubeletSock); err != nil {
		return err
	}
	conn, err := grpc.NewClient("unix://"+kubeletSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, req)
	return err
}

// list is the devices with their current health.
func (p *plugin) list() *pluginapi.ListAndWatchResponse {
	resp := &pluginapi.ListAndWatchResponse{}
	for _, d := range p.res.Devices {
		pd := &pluginapi.Device{ID: d.ID, Health: pluginapi.Healthy}
		if !p.health.healthy(d.GPUUUID) {
			pd.Health = pluginapi.Unhealthy
		}
		if d.NUMA >= 0 {
			pd.Topology = &pluginapi.TopologyInfo{Nodes: []*pluginapi.NUMANode{{ID: int64(d.NUMA)}}}
		}
		resp.Devices = append(resp.Devices, pd)
	}
	return resp
}

// GetDevicePluginOptions implements pluginapi.DevicePluginServer.
func (p *plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{GetPreferredAllocationAvailable: true}, nil
}

// ListAndWatch sends the device list, then again on every health change.
func (p *plugin) ListAndWatch(_ *pluginapi.Empty, stream grpc.ServerStreamingServer[pluginapi.ListAndWatchResponse]) error {
	for {
		changed := p.health.watch()
		if err := stream.Send(p.list()); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-changed:
		}
	}
}

// GetPreferredAllocation prefers the closest devices.
func (p *plugin) GetPreferredAllocation(_ context.Context, req *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	resp := &pluginapi.PreferredAllocationResponse{}
	for _, c := range req.ContainerRequests {
		ids := preferred(p.byID, c.AvailableDeviceIDs, c.MustIncludeDeviceIDs, int(c.AllocationSize), p.opts.Topology)
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerPreferredAllocationResponse{DeviceIDs: ids})
	}
	return resp, nil
}

// Allocate names the devices for the runtime.
func (p *plugin) Allocate(_ context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for _, c := range req.ContainerRequests {
		r, err := allocate(p.byID, p.res.Name, p.opts.DeviceListStrategy, p.opts.CDIKind, c.DevicesIds)
		if err != nil {
			return nil, err
		}
		resp.ContainerResponses = append(resp.ContainerResponses, r)
	}
	return resp, nil
}

// PreStartContainer is not needed (not requested in the options).
func (p *plugin) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

type nopLogger struct{}

func (nopLogger) Debugf(string, ...any) {}
func (nopLogger) Infof(string, ...any)  {}
func (nopLogger) Warnf(string, ...any)  {}
