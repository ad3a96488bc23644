package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/nvbind/nvbind/internal/deviceplugin/kubelettest"
)

// runningPlugin is `nvbind device-plugin` registered with a fake kubelet.
type runningPlugin struct {
	d      *daemon
	dir    string
	reg    *pluginapi.RegisterRequest
	client pluginapi.DevicePluginClient
	ctx    context.Context
}

// startPlugin runs the built `nvbind device-plugin` on s against a fake
// kubelet and checks that it lists s's GPUs, healthy.
func startPlugin(t *testing.T, s *SimRoot, extra ...string) *runningPlugin {
	t.Helper()
	dir := shortTempDir(t, "nvbind-dp-")
	k, err := kubelettest.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Stop() })
	d := startDaemon(t, s.Env(), filepath.Join(t.TempDir(), "device-plugin.log"), bins.CLI, append([]string{"device-plugin",
		"--driver-root", s.Dir, "--no-nvml", "--plugin-dir", dir, "--sysfs", t.TempDir()}, extra...)...)
	regs, err := k.WaitRegistrations(1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if regs[0].ResourceName != "nvidia.com/gpu" || regs[0].Endpoint != "nvbind-nvidia-com-gpu.sock" {
		t.Fatalf("registration = %v", regs[0])
	}
	c, closeConn, err := k.Dial(regs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeConn() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	stream, err := c.ListAndWatch(ctx, &pluginapi.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, dev := range list.Devices {
		if dev.Health != pluginapi.Healthy {
			t.Errorf("device %s is %s", dev.ID, dev.Health)
		}
		ids = append(ids, dev.ID)
	}
	if strings.Join(ids, ",") != strings.Join(s.UUIDs, ",") {
		t.Fatalf("devices %v, want the GPUs' UUIDs %v", ids, s.UUIDs)
	}
	return &runningPlugin{d: d, dir: dir, reg: regs[0], client: c, ctx: ctx}
}

// TestDevicePluginAllocationRunsOnRunc: `nvbind device-plugin` registers
// with a fake kubelet over real unix sockets, lists the simulated GPUs, and
// the CDI annotation its Allocate returns is what nvbind-runtime resolves
// on real runc: the container sees exactly the allocated GPUs.
func TestDevicePluginAllocationRunsOnRunc(t *testing.T) {
	requireRoot(t)
	requireTool(t, "runc")
	s := newGeneratedSimRoot(t, 4)
	p := startPlugin(t, s)
	c, ctx, d, dir, regs := p.client, p.ctx, p.d, p.dir, []*pluginapi.RegisterRequest{p.reg}
	alloc, err := c.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{s.UUIDs[1], s.UUIDs[3]}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp := alloc.ContainerResponses[0]
	if len(resp.Annotations) != 1 || len(resp.Envs) != 0 || len(resp.CdiDevices) != 0 {
		t.Fatalf("Allocate = %v, want one CDI annotation only", resp)
	}

	// What the kubelet and containerd do with it: the annotation lands in
	// the container's config.json, nvbind-runtime resolves it.
	b := newBundle(t, "ls", "/dev")
	b.Spec.Annotations = resp.Annotations
	b.Save(t)
	res := runContainer(t, s, b)
	if res.Code != 0 {
		t.Fatalf("container with the allocated GPUs: %s", res)
	}
	if got := strings.Join(gpuNodes(res.Stdout), " "); got != "nvidia1 nvidia3" {
		t.Errorf("container sees %q, want nvidia1 nvidia3", got)
	}

	// SIGTERM: the plugin stops cleanly and removes its socket.
	d.stop(t)
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("device-plugin exit code %d after SIGTERM", code)
	}
	if _, err := os.Stat(filepath.Join(dir, regs[0].Endpoint)); !os.IsNotExist(err) {
		t.Errorf("plugin socket left behind: %v", err)
	}
}

// TestDevicePluginVolumeMountsWinOverEnv: with the volume-mount list, the
// container gets the GPUs the plugin allocated, whatever the image's
// NVIDIA_VISIBLE_DEVICES (every CUDA image says all).
func TestDevicePluginVolumeMountsWinOverEnv(t *testing.T) {
	requireRoot(t)
	requireTool(t, "runc")
	s := newGeneratedSimRoot(t, 4)
	p := startPlugin(t, s, "--device-list-strategy", "volume-mounts")
	alloc, err := p.client.Allocate(p.ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{s.UUIDs[0], s.UUIDs[2]}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp := alloc.ContainerResponses[0]
	if len(resp.Mounts) != 2 || len(resp.Annotations) != 0 || len(resp.CdiDevices) != 0 {
		t.Fatalf("Allocate = %v, want two volume mounts only", resp)
	}
	// What the kubelet does: the image's env, then the plugin's, and its
	// mounts of the host's /dev/null.
	b := newBundle(t, "ls", "/dev")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=all")
	for k, v := range resp.Envs {
		b.SetEnv(k + "=" + v)
	}
	for _, m := range resp.Mounts {
		b.Spec.Mounts = append(b.Spec.Mounts, rspec.Mount{Destination: m.ContainerPath, Source: m.HostPath, Type: "bind", Options: []string{"bind", "ro"}})
	}
	b.Save(t)
	res := runContainer(t, s, b)
	if res.Code != 0 {
		t.Fatalf("container with the allocated GPUs: %s", res)
	}
	if got := strings.Join(gpuNodes(res.Stdout), " "); got != "nvidia0 nvidia2" {
		t.Errorf("container sees %q, want nvidia0 nvidia2", got)
	}
}
