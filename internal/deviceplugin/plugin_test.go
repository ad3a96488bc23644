package deviceplugin_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/nvbind/nvbind/internal/deviceplugin"
	"github.com/nvbind/nvbind/internal/deviceplugin/kubelettest"
	"github.com/nvbind/nvbind/internal/gpu"
)

const (
	uuid0 = "GPU-00000000-1111-2222-3333-444400000000"
	uuid1 = "GPU-00000001-1111-2222-3333-444400000001"
)

func twoGPUs() *gpu.Inventory {
	return &gpu.Inventory{GPUs: []gpu.GPU{
		{Index: 0, UUID: uuid0, BusID: "0000:07:00.0"},
		{Index: 1, UUID: uuid1, BusID: "0000:87:00.0"},
	}}
}

// fakeHealth is a HealthMonitor the test drives: events it sends, probes
// that pass once allowed.
type fakeHealth struct {
	events chan deviceplugin.HealthEvent
	mu     sync.Mutex
	ok     map[string]bool
	probes map[string]int
}

func newFakeHealth() *fakeHealth {
	return &fakeHealth{events: make(chan deviceplugin.HealthEvent), ok: map[string]bool{}, probes: map[string]int{}}
}

func (f *fakeHealth) Watch(ctx context.Context, _ []string, out chan<- deviceplugin.HealthEvent) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-f.events:
			out <- ev
		}
	}
}

func (f *fakeHealth) Probe(uuid string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probes[uuid]++
	if f.ok[uuid] {
		return nil
	}
	return errors.New("still failing")
}

func (f *fakeHealth) setOK(uuid string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ok[uuid] = ok
}

func (f *fakeHealth) probeCount(uuid string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.probes[uuid]
}

// startPlugin runs the plugin for res against a fake kubelet in a fresh
// directory and returns the kubelet and the first registration.
func startPlugin(t *testing.T, res []deviceplugin.Resource, opts deviceplugin.Options) (*kubelettest.Kubelet, []*pluginapi.RegisterRequest) {
	t.Helper()
	dir := t.TempDir()
	k, err := kubelettest.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Stop)
	opts.PluginDir = dir
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- deviceplugin.Run(ctx, res, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		// The plugin removes its sockets when it stops.
		for _, r := range res {
			if _, err := os.Stat(filepath.Join(dir, deviceplugin.SocketName(r.Name))); !os.IsNotExist(err) {
				t.Errorf("socket for %s left behind (%v)", r.Name, err)
			}
		}
	})
	regs, err := k.WaitRegistrations(len(res), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return k, regs
}

type listStream struct {
	stream pluginapi.DevicePlugin_ListAndWatchClient
	t      *testing.T
}

func (s listStream) next() map[string]*pluginapi.Device {
	s.t.Helper()
	resp, err := s.stream.Recv()
	if err != nil {
		s.t.Fatalf("ListAndWatch: %v", err)
	}
	out := map[string]*pluginapi.Device{}
	for _, d := range resp.Devices {
		out[d.ID] = d
	}
	return out
}

func listAndWatch(t *testing.T, k *kubelettest.Kubelet, reg *pluginapi.RegisterRequest) (pluginapi.DevicePluginClient, listStream) {
	t.Helper()
	c, closeConn, err := k.Dial(reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); closeConn() })
	stream, err := c.ListAndWatch(ctx, &pluginapi.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	return c, listStream{stream: stream, t: t}
}

func TestRegisterListAndWatchHealth(t *testing.T) {
	sys := t.TempDir()
	for bus, node := range map[string]string{"0000:07:00.0": "0\n", "0000:87:00.0": "1\n"} {
		os.MkdirAll(filepath.Join(sys, "bus/pci/devices", bus), 0o755)
		os.WriteFile(filepath.Join(sys, "bus/pci/devices", bus, "numa_node"), []byte(node), 0o644)
	}
	res, err := deviceplugin.Build(twoGPUs(), deviceplugin.BuildOptions{ResourceName: "nvidia.com/gpu", NUMA: deviceplugin.SysfsNUMA(sys)})
	if err != nil {
		t.Fatal(err)
	}
	fh := newFakeHealth()
	k, regs := startPlugin(t, res, deviceplugin.Options{Health: fh, ProbeInterval: 50 * time.Millisecond})
	reg := regs[0]
	if reg.Version != "v1beta1" || reg.ResourceName != "nvidia.com/gpu" || reg.Endpoint != "nvbind-nvidia-com-gpu.sock" ||
		reg.Options == nil || !reg.Options.GetPreferredAllocationAvailable {
		t.Fatalf("registration = %v", reg)
	}
	_, s := listAndWatch(t, k, reg)
	devs := s.next()
	if len(devs) != 2 {
		t.Fatalf("initial list = %v", devs)
	}
	for id, numa := range map[string]int64{uuid0: 0, uuid1: 1} {
		d := devs[id]
		if d == nil || d.Health != pluginapi.Healthy || d.Topology == nil || len(d.Topology.Nodes) != 1 || d.Topology.Nodes[0].ID != numa {
			t.Errorf("device %s = %v, want healthy on NUMA node %d", id, d, numa)
		}
	}

	// A critical error: GPU 1 is unhealthy, GPU 0 is not.
	fh.events <- deviceplugin.HealthEvent{UUID: uuid1, Reason: "Xid 79"}
	devs = s.next()
	if devs[uuid1].Health != pluginapi.Unhealthy || devs[uuid0].Health != pluginapi.Healthy {
		t.Fatalf("after Xid 79 on GPU 1: %v", devs)
	}
	// Probes fail for a while: no change is sent; then one passes.
	deadline := time.Now().Add(5 * time.Second)
	for fh.probeCount(uuid1) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if fh.probeCount(uuid1) < 2 {
		t.Fatal("the unhealthy GPU is not probed")
	}
	fh.setOK(uuid1, true)
	devs = s.next()
	if devs[uuid1].Health != pluginapi.Healthy {
		t.Fatalf("after a passing probe: %v, want GPU 1 healthy again", devs)
	}
}

func TestKubeletRestartReregisters(t *testing.T) {
	res, err := deviceplugin.Build(twoGPUs(), deviceplugin.BuildOptions{ResourceName: "example.com/gpu"})
	if err != nil {
		t.Fatal(err)
	}
	k, regs := startPlugin(t, res, deviceplugin.Options{Log: tlog{t}})
	if regs[0].ResourceName != "example.com/gpu" || regs[0].Endpoint != "nvbind-example-com-gpu.sock" {
		t.Fatalf("registration = %v", regs[0])
	}
	// The kubelet restarts: it removes the plugin sockets and makes a new
	// kubelet.sock; the plugin serves and registers again.
	if err := k.Restart(); err != nil {
		t.Fatal(err)
	}
	regs, err = k.WaitRegistrations(1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The plugin may register once more as it restarts; like the kubelet,
	// dial again until its socket answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, closeConn, err := k.Dial(regs[0])
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		stream, err := c.ListAndWatch(ctx, &pluginapi.Empty{})
		var resp *pluginapi.ListAndWatchResponse
		if err == nil {
			resp, err = stream.Recv()
		}
		cancel()
		closeConn()
		if err == nil {
			if len(resp.Devices) != 2 {
				t.Fatalf("list after restart = %v", resp.Devices)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin does not answer after the kubelet restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAllocateAndPreferredOverGRPC(t *testing.T) {
	inv := &gpu.Inventory{}
	for i := 0; i < 4; i++ {
		inv.GPUs = append(inv.GPUs, gpu.GPU{Index: i, UUID: "GPU-" + string(rune('a'+i))})
	}
	res, err := deviceplugin.Build(inv, deviceplugin.BuildOptions{ResourceName: "nvidia.com/gpu"})
	if err != nil {
		t.Fatal(err)
	}
	topo := deviceplugin.NUMATopology{0: 0, 1: 1, 2: 0, 3: 1}
	k, regs := startPlugin(t, res, deviceplugin.Options{Topology: topo})
	c, closeConn, err := k.Dial(regs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn()
	ctx := context.Background()
	opts, err := c.GetDevicePluginOptions(ctx, &pluginapi.Empty{})
	if err != nil || !opts.GetPreferredAllocationAvailable {
		t.Fatalf("options = %v, %v", opts, err)
	}
	pref, err := c.GetPreferredAllocation(ctx, &pluginapi.PreferredAllocationRequest{ContainerRequests: []*pluginapi.ContainerPreferredAllocationRequest{
		{AvailableDeviceIDs: []string{"GPU-a", "GPU-b", "GPU-c", "GPU-d"}, MustIncludeDeviceIDs: []string{"GPU-b"}, AllocationSize: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := pref.ContainerResponses[0].DeviceIDs; len(got) != 2 || got[0] != "GPU-b" || got[1] != "GPU-d" {
		t.Errorf("preferred = %v, want [GPU-b GPU-d] (same NUMA node)", got)
	}
	alloc, err := c.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{"GPU-b", "GPU-d"}}, {DevicesIds: []string{"GPU-a"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"nvidia.com/gpu=GPU-b,nvidia.com/gpu=GPU-d", "nvidia.com/gpu=GPU-a"}
	for i, r := range alloc.ContainerResponses {
		if got := r.Annotations["cdi.k8s.io/nvbind_nvidia.com_gpu"]; got != want[i] || len(r.Annotations) != 1 ||
			len(r.CdiDevices)+len(r.Envs)+len(r.Mounts)+len(r.Devices) != 0 {
			t.Errorf("container %d: %v, want only the annotation %q", i, r, want[i])
		}
	}
	if _, err := c.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{"GPU-z"}},
	}}); err == nil {
		t.Error("Allocate of an unknown device succeeded")
	}
}

func TestMixedServesOneSocketPerResource(t *testing.T) {
	inv := &gpu.Inventory{GPUs: []gpu.GPU{
		{Index: 0, UUID: uuid0},
		{Index: 1, UUID: uuid1, MIGEnabled: true, MIGDevices: []gpu.MIG{
			{Index: 0, UUID: "MIG-a", Profile: "3g.20gb"}, {Index: 1, UUID: "MIG-b", Profile: "1g.5gb"},
		}},
	}}
	res, err := deviceplugin.Build(inv, deviceplugin.BuildOptions{ResourceName: "nvidia.com/gpu", MIGStrategy: deviceplugin.MIGMixed})
	if err != nil {
		t.Fatal(err)
	}
	k, regs := startPlugin(t, res, deviceplugin.Options{DeviceListStrategy: deviceplugin.ListCDICRI})
	got := map[string]string{}
	for _, r := range regs {
		got[r.ResourceName] = r.Endpoint
	}
	want := map[string]string{
		"nvidia.com/gpu":         "nvbind-nvidia-com-gpu.sock",
		"nvidia.com/mig-1g.5gb":  "nvbind-nvidia-com-mig-1g-5gb.sock",
		"nvidia.com/mig-3g.20gb": "nvbind-nvidia-com-mig-3g-20gb.sock",
	}
	if len(got) != len(want) {
		t.Fatalf("registrations = %v, want %v", got, want)
	}
	for n, e := range want {
		if got[n] != e {
			t.Errorf("%s registered at %q, want %q", n, got[n], e)
		}
	}
	for _, r := range regs {
		if r.ResourceName != "nvidia.com/mig-3g.20gb" {
			continue
		}
		c, closeConn, err := k.Dial(r)
		if err != nil {
			t.Fatal(err)
		}
		defer closeConn()
		alloc, err := c.Allocate(context.Background(), &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIds: []string{"MIG-a"}}}})
		if err != nil {
			t.Fatal(err)
		}
		cr := alloc.ContainerResponses[0]
		if len(cr.CdiDevices) != 1 || cr.CdiDevices[0].Name != "nvidia.com/gpu=1:0" || len(cr.Annotations) != 0 {
			t.Errorf("MIG allocate = %v, want cdi_devices [nvidia.com/gpu=1:0] only", cr)
		}
	}
}
