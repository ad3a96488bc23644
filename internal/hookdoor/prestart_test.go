package hookdoor

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/nvbind/nvbind/internal/config"
)

func TestPlanInto(t *testing.T) {
	bundle := t.TempDir()
	os.WriteFile(filepath.Join(bundle, "config.json"), []byte(`{"ociVersion":"1.2.0","root":{"path":"rootfs"}}`), 0o644)
	i64 := func(v int64) *int64 { return &v }
	before := &rspec.Spec{
		Process: &rspec.Process{Env: []string{"PATH=/bin"}},
		Mounts:  []rspec.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		Linux: &rspec.Linux{Devices: []rspec.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}},
			Resources: &rspec.LinuxResources{Devices: []rspec.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}},
		Hooks: &rspec.Hooks{Prestart: []rspec.Hook{{Path: "/usr/bin/nvbind-hook", Args: []string{"nvbind-hook", "prestart"}}}},
	}
	after := &rspec.Spec{
		Process: &rspec.Process{Env: []string{"PATH=/bin", "NVIDIA_X=1"}},
		Mounts: append(append([]rspec.Mount(nil), before.Mounts...),
			rspec.Mount{Destination: "/usr/lib/libcuda.so.1", Source: "/drv/libcuda.so.1", Type: "bind", Options: []string{"ro", "nosuid", "nodev", "bind"}},
			rspec.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm"}),
		Linux: &rspec.Linux{Devices: append(append([]rspec.LinuxDevice(nil), before.Linux.Devices...), rspec.LinuxDevice{Path: "/dev/nvidia0", Type: "c", Major: 195}),
			Resources: &rspec.LinuxResources{Devices: []rspec.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: i64(195), Minor: i64(0), Access: "rwm"}}}},
		Hooks: &rspec.Hooks{Prestart: before.Hooks.Prestart,
			CreateContainer: []rspec.Hook{{Path: "/usr/bin/nvbind-hook", Args: []string{"nvbind-hook", "update-ldcache", "--folder", "/usr/lib"}}}},
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	p, err := planInto(before, after, bundle, log)
	if err != nil {
		t.Fatal(err)
	}
	if p.rootfs != filepath.Join(bundle, "rootfs") {
		t.Errorf("rootfs %s", p.rootfs)
	}
	if len(p.devices) != 1 || p.devices[0].Path != "/dev/nvidia0" {
		t.Errorf("devices %+v", p.devices)
	}
	if len(p.rules) != 1 || *p.rules[0].Major != 195 || len(p.all) != 2 {
		t.Errorf("rules %+v all %+v", p.rules, p.all)
	}
	// Only the new bind mount: proc was there, a tmpfs cannot be added.
	if len(p.mounts) != 1 || p.mounts[0].Destination != "/usr/lib/libcuda.so.1" {
		t.Errorf("mounts %+v", p.mounts)
	}
	// Only the new hook: nvbind's own prestart entry is not run again.
	if len(p.hooks) != 1 || p.hooks[0].Args[1] != "update-ldcache" {
		t.Errorf("hooks %+v", p.hooks)
	}

	shared := *before
	shared.Linux = &rspec.Linux{RootfsPropagation: "rshared"}
	if _, err := planInto(&shared, after, bundle, log); err == nil || !strings.Contains(err.Error(), "propagate to the host") {
		t.Errorf("shared rootfs: %v", err)
	}
}

func TestToRule(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	for _, tt := range []struct {
		in   rspec.LinuxDeviceCgroup
		want string
		err  bool
	}{
		{rspec.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(195), Minor: i64(3), Access: "rw"}, "c 195:3 rw", false},
		{rspec.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(510)}, "c 510:* rwm", false},
		{rspec.LinuxDeviceCgroup{Allow: true}, "a *:* rwm", false},
		{rspec.LinuxDeviceCgroup{Allow: true, Type: "x"}, "", true},
	} {
		r, err := toRule(tt.in)
		if (err != nil) != tt.err || (err == nil && r.CgroupString() != tt.want) {
			t.Errorf("%+v: %v %v, want %q", tt.in, r, err, tt.want)
		}
	}
}

func TestSameUserNamespace(t *testing.T) {
	if err := sameUserNamespace(os.Getpid()); err != nil {
		t.Errorf("own process: %v", err)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare")
	}
	cmd := exec.Command(unshare, "--user", "sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	// Wait until it has its namespace.
	self, _ := os.Readlink("/proc/self/ns/user")
	for i := 0; i < 100; i++ {
		if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid)); ns != self && ns != "" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := sameUserNamespace(cmd.Process.Pid); err == nil || !strings.Contains(err.Error(), "own user namespace") {
		t.Errorf("a process in its own user namespace: %v", err)
	}
}

// TestPrestartNoRequest: the door reads the bundle's config.json (the
// state names the bundle dir) and leaves a container without a request
// alone, before it needs a pid.
func TestPrestartNoRequest(t *testing.T) {
	cfg, err := config.LoadFile(filepath.Join(t.TempDir(), "none.toml"))
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	bundle := t.TempDir()
	state := func(pid int) io.Reader {
		return strings.NewReader(fmt.Sprintf(`{"ociVersion":"1.2.0","id":"c1","status":"created","pid":%d,"bundle":%q}`, pid, bundle))
	}
	os.WriteFile(filepath.Join(bundle, "config.json"), []byte(`{"ociVersion":"1.2.0","process":{"env":["PATH=/bin"]},"root":{"path":"rootfs"}}`), 0o644)
	if err := Prestart(state(0), cfg, log); err != nil {
		t.Errorf("no request: %v", err)
	}
	os.Remove(filepath.Join(bundle, "config.json"))
	if err := Prestart(state(0), cfg, log); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("no config.json: %v", err)
	}
}
