package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/engines"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/simroot"
	"github.com/nvbind/nvbind/internal/recipes"
)

// fakeRoot lays out the host files Collect reads.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var hostFiles = map[string]string{
	"etc/os-release":                   "# comment\nNAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"24.04\"\nPRETTY_NAME='Ubuntu 24.04.3 LTS'\n\nbroken line\n",
	"proc/sys/kernel/osrelease":        "6.8.0-1024-aws\n",
	"proc/sys/kernel/hostname":         "gpu-node-7\n",
	"proc/modules":                     "nvidia_uvm 1982464 0 - Live 0x0\nnvidia 104071168 2 nvidia_uvm, Live 0x0\n",
	"proc/cmdline":                     "BOOT_IMAGE=/boot/vmlinuz-6.8.0 ro hugepages=5128 security=apparmor\n",
	"sys/fs/cgroup/cgroup.controllers": "cpu memory pids\n",
}

// stub replaces GPU discovery and engine detection for one test.
func stub(t *testing.T, inv *gpu.Inventory, invErr error, engs []engines.Engine) {
	t.Helper()
	oldD, oldE := discoverGPUs, detectEngines
	t.Cleanup(func() { discoverGPUs, detectEngines = oldD, oldE })
	discoverGPUs = func(gpu.DiscoverOptions) (*gpu.Inventory, error) { return inv, invErr }
	detectEngines = func() []engines.Engine { return engs }
}

func lookup(t *testing.T, s *recipes.Snapshot, name string) string {
	t.Helper()
	v, ok := s.Lookup(name)
	if !ok {
		t.Errorf("no reading %s", name)
	}
	return v
}

func TestCollect(t *testing.T) {
	root := fakeRoot(t, hostFiles)
	inv := &gpu.Inventory{Source: gpu.SourceNVML, DriverVersion: "570.133.20", CUDAVersion: "12.8", GPUs: []gpu.GPU{
		{Name: "NVIDIA H100 80GB HBM3", ComputeCapability: "9.0", MemoryBytes: 80 << 30},
		{Name: "NVIDIA H100 80GB HBM3", ComputeCapability: "9.0", MemoryBytes: 80 << 30, MIGEnabled: true},
	}}
	stub(t, inv, nil, []engines.Engine{
		{Name: "docker", Installed: true, Version: "27.5.1", ConfigPath: "/etc/docker/daemon.json"},
		{Name: "containerd", Installed: true, Version: "1.7.24", ConfigPath: "/etc/containerd/config.toml", Registered: true},
		{Name: "crio", ConfigPath: "/etc/crio/crio.conf", Error: "parse crio.conf: bad toml"},
	})
	s := Collect(Options{Root: root, Version: "1.2.3"})
	want := map[string]string{
		"OS.release.ID":                        "ubuntu",
		"OS.release.VERSION_ID":                "24.04",
		"OS.release.PRETTY_NAME":               "Ubuntu 24.04.3 LTS",
		"OS.sysctl./proc/sys/kernel/osrelease": "6.8.0-1024-aws",
		"OS.cgroup.version":                    "2",
		"OS.kmod.nvidia":                       "true",
		"OS.kmod.nvidia_uvm":                   "true",
		"OS.grub.hugepages":                    "5128",
		"OS.grub.ro":                           "",
		"GPU.smi.driver":                       "570.133.20",
		"GPU.smi.cuda-version":                 "12.8",
		"GPU.smi.gpu-count":                    "2",
		"GPU.smi.gpu.model":                    "NVIDIA H100 80GB HBM3",
		"GPU.smi.gpu.product-architecture":     "Hopper",
		"GPU.smi.gpu.memory-mib":               "81920",
		"GPU.smi.gpu.mig-mode":                 "Enabled",
		"Engine.containerd.version":            "1.7.24",
		"Engine.containerd.nvbind-registered":  "true",
		"Engine.docker.nvbind-registered":      "false",
		"NVBind.runtime.registered":            "true",
		"NVBind.runtime.engines":               "containerd",
		"NVBind.runtime.version":               "1.2.3",
	}
	for name, v := range want {
		if got := lookup(t, s, name); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
	if why, ok := s.Unreadable("Engine.crio.nvbind-registered"); !ok || !strings.Contains(why, "bad toml") {
		t.Errorf("crio's config error not recorded: %q", why)
	}
	if s.Metadata["source"] != "gpu-node-7" || s.Metadata["version"] != "1.2.3" || s.Metadata["partial"] != "true" {
		t.Errorf("metadata = %v", s.Metadata)
	}
	if _, ok := s.Metadata["timestamp"]; ok {
		t.Error("snapshot has a timestamp; output must be byte-stable")
	}

	// It encodes byte-stably and reads back with the reader validate uses.
	a, err := recipes.Encode(s, recipes.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := recipes.Encode(Collect(Options{Root: root, Version: "1.2.3"}), recipes.FormatYAML)
	if string(a) != string(b) {
		t.Error("two snapshots of the same node differ")
	}
	back, err := recipes.ReadSnapshot(a)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := back.Lookup("GPU.smi.gpu-count"); v != "2" {
		t.Errorf("read back gpu-count = %q", v)
	}
	if !strings.HasPrefix(string(a), "apiVersion: aicr.nvidia.com/v1alpha1\nkind: Snapshot\n") {
		t.Errorf("not in AICR's format:\n%.200s", a)
	}
}

func TestCollectPartial(t *testing.T) {
	root := fakeRoot(t, map[string]string{"proc/sys/kernel/osrelease": "6.1.0-28-amd64\n"})
	stub(t, &gpu.Inventory{Source: gpu.SourceNone, Note: "no NVIDIA driver loaded"}, nil, nil)
	s := Collect(Options{Root: root})
	if s.Metadata["partial"] != "true" {
		t.Error("snapshot not marked partial")
	}
	for name, want := range map[string]string{
		"GPU.smi.driver":    "no NVIDIA driver loaded",
		"OS.release.ID":     "os-release",
		"OS.kmod.nvidia":    "modules",
		"OS.cgroup.version": "cgroup",
		"OS.grub.ro":        "cmdline",
	} {
		why, ok := s.Unreadable(name)
		if !ok || !strings.Contains(why, want) {
			t.Errorf("Unreadable(%s) = %q, %v; want a reason mentioning %q", name, why, ok, want)
		}
	}
	if got := lookup(t, s, "OS.sysctl./proc/sys/kernel/osrelease"); got != "6.1.0-28-amd64" {
		t.Errorf("kernel = %q", got)
	}

	// The procfs path knows no CUDA version for an unknown branch.
	stub(t, &gpu.Inventory{Source: gpu.SourceProcfs, DriverVersion: "999.1", GPUs: []gpu.GPU{{Name: "X"}}}, nil, nil)
	s = Collect(Options{Root: root})
	if why, ok := s.Unreadable("GPU.smi.cuda-version"); !ok || !strings.Contains(why, "999.1") {
		t.Errorf("cuda-version unreadable = %q %v", why, ok)
	}
	stub(t, nil, errors.New("permission denied"), nil)
	s = Collect(Options{Root: root})
	if why, _ := s.Unreadable("GPU.smi.gpu.model"); why != "permission denied" {
		t.Errorf("discovery error not recorded: %q", why)
	}
}

// TestCollectSimulatedDriver runs the real procfs discovery on a simulated
// driver root.
func TestCollectSimulatedDriver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("simroot makes device nodes: needs root")
	}
	dir := t.TempDir()
	sim, err := simroot.Build(dir, simroot.Options{GPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	oldE := detectEngines
	t.Cleanup(func() { detectEngines = oldE })
	detectEngines = func() []engines.Engine { return nil }
	s := Collect(Options{Root: fakeRoot(t, hostFiles), GPU: gpu.DiscoverOptions{DriverRoot: sim.Dir}})
	for name, want := range map[string]string{
		"GPU.smi.driver":                   sim.DriverVersion,
		"GPU.smi.gpu-count":                "2",
		"GPU.smi.gpu.model":                simroot.ModelName,
		"GPU.smi.gpu.product-architecture": "Ampere",
		"GPU.smi.cuda-version":             gpu.CUDAVersionForDriver(sim.DriverVersion),
		"GPU.smi.discovery":                "procfs",
	} {
		if got := lookup(t, s, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}
