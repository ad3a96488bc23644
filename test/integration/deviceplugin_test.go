package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/nvbind/nvbind/internal/deviceplugin/kubelettest"
)

// TestDevicePluginAllocationRunsOnRunc: `nvbind device-plugin` registers
// with a fake kubelet over real unix sockets, lists the simulated GPUs, and
// the CDI annotation its Allocate returns is what nvbind-runtime resolves
// on real runc: the container sees exactly the allocated GPUs.
func TestDevicePluginAllocationRunsOnRunc(t *testing.T) {
	requireRoot(t)
	requireTool(t, "runc")
	s := newGeneratedSimRoot(t, 4)
	dir := shortTempDir(t, "nvbind-dp-")
	k, err := kubelettest.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	d := startDaemon(t, s.Env(), filepath.Join(t.TempDir(), "device-plugin.log"), bins.CLI, "device-plugin",
		"--driver-root", s.Dir, "--no-nvml", "--plugin-dir", dir, "--sysfs", t.TempDir())
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
	defer closeConn()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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
