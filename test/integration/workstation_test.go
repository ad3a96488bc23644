package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

// workstation_test.go: WSL2 and the driver flavours, end to end: nvbind
// info, doctor and cdi generate on simulated roots, and containers on real
// runc through nvbind-runtime.

// newWorkstationRoot builds a simulated root with opts and points the
// config at it; the spec dir is left empty.
func newWorkstationRoot(t *testing.T, opts simroot.Options) (*SimRoot, *simroot.Root) {
	t.Helper()
	s := newSimRootDirs(t, opts.GPUs)
	r, err := simroot.Build(s.Dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.WriteConfig(t, "")
	return s, r
}

func mustContain(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

// TestWSLContainer: a WSL2 root through info, cdi generate and a runc
// container asking for all GPUs, which sees /dev/dxg, libcuda.so.1 in its
// ld cache and nvidia-smi; a request for GPU 1 is refused with the WSL2
// explanation.
func TestWSLContainer(t *testing.T) {
	requireRoot(t)
	s, r := newWorkstationRoot(t, simroot.Options{WSL: true})

	info := runCmd(t, s.Env(), bins.CLI, "info", "--no-nvml")
	if info.Code != 0 {
		t.Fatalf("nvbind info: %s", info)
	}
	mustContain(t, "nvbind info", info.Stdout,
		"Driver version:  wsl-"+simroot.WSLStoreName,
		"Discovery:       wsl",
		"Platform:        WSL2 (kernel "+simroot.WSLKernelRelease+")",
		"Driver store:    "+r.WSLStore,
		"GPU selection:   all (or 0) only")

	spec := filepath.Join(s.SpecDir, "nvidia.yaml")
	gen := runCmd(t, s.Env(), bins.CLI, "cdi", "generate", "--output", spec, "--hook-path", bins.Hook, "--no-nvml")
	if gen.Code != 0 {
		t.Fatalf("nvbind cdi generate: %s", gen)
	}
	doctor := runCmd(t, s.Env(), bins.CLI, "doctor", "--no-nvml")
	mustContain(t, "nvbind doctor", doctor.Stdout,
		"PASS  driver", "WSL2 (kernel "+simroot.WSLKernelRelease+"): NVIDIA driver store "+simroot.WSLStoreName,
		"PASS  device-nodes", "/dev/dxg present (10:124)",
		"PASS  cdi-spec", "matches driver wsl-"+simroot.WSLStoreName)

	for _, devices := range []string{"all", "0"} {
		b := newBundle(t, "sh", "-c", "ls -l /dev/dxg; ldconfig -p; nvidia-smi -L; ls /usr/lib/wsl/drivers")
		withLdconfig(t, b)
		b.SetEnv("NVIDIA_VISIBLE_DEVICES=" + devices)
		b.Save(t)
		res := runContainer(t, s, b)
		if res.Code != 0 {
			t.Fatalf("NVIDIA_VISIBLE_DEVICES=%s: %s", devices, res)
		}
		mustContain(t, "container ("+devices+")", res.Stdout,
			"crw-rw-rw-", "10, 124", "/dev/dxg\n",
			"\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/wsl/lib/libcuda.so.1\n",
			"\tlibnvidia-ml.so.1 (libc6,x86-64) => /usr/lib/wsl/lib/libnvidia-ml.so.1\n",
			"GPU 0: "+simroot.WSLModel,
			simroot.WSLStoreName)
		if strings.Contains(res.Stdout, simroot.WSLOtherStore) {
			t.Errorf("the Intel driver store reached the container:\n%s", res.Stdout)
		}
	}

	b := newBundle(t, "true")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=1")
	b.Save(t)
	before := b.ReadConfig(t)
	assertRefused(t, s, b, before, runContainer(t, s, b),
		"GPU 1: WSL2 shares the host's GPUs with containers through one device, /dev/dxg, and cannot give a container single GPUs")
}

// TestWSLJITSpec: on WSL2 the runtime writes the spec itself (no NVML,
// no procfs driver files) and regenerates it when the Windows driver
// changes (a new driver store).
func TestWSLJITSpec(t *testing.T) {
	requireRoot(t)
	s, _ := newWorkstationRoot(t, simroot.Options{WSL: true})
	s.JITSpec = filepath.Join(t.TempDir(), "run-cdi", "nvidia.json")
	s.WriteConfig(t, "")
	run := func() Result {
		b := newBundle(t, "sh", "-c", "ls /dev; nvidia-smi -L; echo driver=$NVBIND_DRIVER_VERSION")
		b.SetEnv("NVIDIA_VISIBLE_DEVICES=all")
		b.Save(t)
		res := runContainer(t, s, b)
		if res.Code != 0 {
			t.Fatalf("create: %s", res)
		}
		return res
	}
	mustContain(t, "container", run().Stdout, "dxg", "GPU 0: "+simroot.WSLModel, "driver=wsl-"+simroot.WSLStoreName)

	// A Windows driver update: a new store replaces the old one.
	drivers := filepath.Join(s.Dir, "usr/lib/wsl/drivers")
	const next = "nv_dispi.inf_amd64_93d1e0c4a5b6f728"
	if err := os.Rename(filepath.Join(drivers, simroot.WSLStoreName), filepath.Join(drivers, next)); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "container after the driver update", run().Stdout, "driver=wsl-"+next)
	log, _ := os.ReadFile(s.LogFile())
	if c := strings.Count(string(log), jitLogLine); c != 2 {
		t.Errorf("spec written %d times, want twice (first use, driver update); log:\n%s", c, log)
	}
}

// TestFlavourInfoDoctorRuntime: each kernel driver flavour's info and
// doctor output, and the runtime's refusal of a GPU the NVIDIA driver
// does not drive.
func TestFlavourInfoDoctorRuntime(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name    string
		opts    simroot.Options
		info    []string
		doctor  []string
		request string // refused with refusal ("" = none)
		refusal []string
	}{
		{
			name:   "open",
			opts:   simroot.Options{GPUs: 1, LDCache: true},
			info:   []string{"Kernel driver:   NVIDIA open kernel modules", "0000:07:00.0 (NVIDIA 10de:20b2, driver nvidia): usable for containers"},
			doctor: []string{"PASS  driver-flavour", "NVIDIA open kernel modules", "PASS  gpu-binding", "1 NVIDIA GPU(s) bound to the nvidia driver", "PASS  gsp-firmware", "gsp_ga10x.bin, gsp_tu10x.bin"},
		},
		{
			name:   "open without GSP firmware",
			opts:   simroot.Options{GPUs: 1, LDCache: true, NoFirmware: true},
			doctor: []string{"FAIL  gsp-firmware", "need GSP firmware, but /lib/firmware/nvidia/" + simroot.DefaultDriverVersion + "/ has no gsp_*.bin", "firmware-nvidia-gsp"},
		},
		{
			name:   "proprietary",
			opts:   simroot.Options{GPUs: 1, LDCache: true, Kernel: simroot.KernelProprietary},
			info:   []string{"Kernel driver:   NVIDIA proprietary kernel modules"},
			doctor: []string{"PASS  driver-flavour", "NVIDIA proprietary kernel modules", "SKIP  gsp-firmware"},
		},
		{
			name:    "nouveau",
			opts:    simroot.Options{GPUs: 1, Kernel: simroot.KernelNouveau},
			info:    []string{"NVIDIA driver:   none", "Kernel driver:   nouveau (nouveau module loaded): no CUDA", "NOT usable for containers: bound to nouveau", "fix: install the NVIDIA driver"},
			doctor:  []string{"FAIL  driver-flavour", "nouveau drives the NVIDIA GPUs", "blacklist nouveau", "FAIL  gpu-binding", "0000:07:00.0 (NVIDIA 10de:20b2, driver nouveau) is bound to nouveau"},
			request: "0",
			refusal: []string{"GPU 0 is not usable for containers: 0000:07:00.0 (NVIDIA 10de:20b2, driver nouveau) is bound to nouveau", "fix: install the NVIDIA driver", "the NVIDIA driver serves no GPU"},
		},
		{
			name:    "vfio",
			opts:    simroot.Options{GPUs: 1, LDCache: true, VFIOGPUs: 1},
			info:    []string{"0000:e0:00.0 (NVIDIA 10de:20b2, driver vfio-pci): NOT usable for containers: bound to vfio-pci", "fix: to use it in containers: echo 0000:e0:00.0 > /sys/bus/pci/drivers/vfio-pci/unbind"},
			doctor:  []string{"WARN  gpu-binding", "is bound to vfio-pci (reserved for a virtual machine)"},
			request: "1",
			refusal: []string{"GPU 1 is not usable for containers: 0000:e0:00.0 (NVIDIA 10de:20b2, driver vfio-pci) is bound to vfio-pci", "the NVIDIA driver serves 1 GPU(s), indices 0-0"},
		},
		{
			name:   "hybrid laptop",
			opts:   simroot.Options{GPUs: 1, LDCache: true, Hybrid: true, Model: "NVIDIA GeForce RTX 4070 Laptop GPU"},
			info:   []string{"0000:00:02.0 (Intel 8086:9a49, driver i915): integrated GPU", "0000:07:00.0 (NVIDIA 10de:20b2, driver nvidia): usable", "Hybrid graphics: PRIME", "prime=true"},
			doctor: []string{"PASS  hybrid-graphics", "PRIME laptop: integrated 0000:00:02.0 (Intel 8086:9a49, driver i915)", "nvbind.io/profile.prime=true"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newWorkstationRoot(t, tt.opts)
			s.JITSpec = filepath.Join(s.SpecDir, "nvidia.json")
			s.WriteConfig(t, "")
			info := runCmd(t, s.Env(), bins.CLI, "info", "--no-nvml")
			if info.Code != 0 {
				t.Fatalf("nvbind info: %s", info)
			}
			mustContain(t, "nvbind info", info.Stdout, tt.info...)
			doctor := runCmd(t, s.Env(), bins.CLI, "doctor", "--no-nvml")
			mustContain(t, "nvbind doctor", doctor.Stdout, tt.doctor...)
			if tt.request == "" {
				return
			}
			b := newBundle(t, "true")
			b.SetEnv("NVIDIA_VISIBLE_DEVICES=" + tt.request)
			b.Save(t)
			before := b.ReadConfig(t)
			assertRefused(t, s, b, before, runContainer(t, s, b), tt.refusal...)
		})
	}
}

// TestWSLOllamaProfile: on WSL2 the ollama profile's fit check uses the
// GPU memory NVML reported to `nvbind cdi generate` (saved inventory);
// without it the container starts and the log says the check was skipped
// and why.
func TestWSLOllamaProfile(t *testing.T) {
	requireRoot(t)
	s, r := newWorkstationRoot(t, simroot.Options{WSL: true})
	s.JITSpec = filepath.Join(s.SpecDir, "nvidia.json")
	s.Inventory = filepath.Join(t.TempDir(), "inventory.json")
	s.WriteConfig(t, "")
	bundle := func(model string) *Bundle {
		b := newBundle(t, "true")
		b.SetEnv("NVIDIA_VISIBLE_DEVICES=all")
		b.Spec.Annotations = map[string]string{"nvbind.io/profile": "ollama", "nvbind.io/profile.model": model}
		b.Save(t)
		return b
	}
	if res := runContainer(t, s, bundle("llama3.1:70b")); res.Code != 0 {
		t.Fatalf("without GPU memory the container must start: %s", res)
	}
	log, _ := os.ReadFile(s.LogFile())
	mustContain(t, "nvbind log", string(log), "on WSL2 GPU memory comes from NVML through /usr/lib/wsl/lib/libnvidia-ml.so.1", "fit check skipped")

	// What `nvbind cdi generate` saves when WSL's NVML loads.
	inv := &gpu.Inventory{Source: gpu.SourceNVML, DriverVersion: r.DriverVersion,
		GPUs: []gpu.GPU{{Index: 0, Minor: -1, UUID: "GPU-wsl0", Name: simroot.WSLModel, MemoryBytes: 24 << 30}}}
	if err := gpu.SaveInventory(s.Inventory, inv); err != nil {
		t.Fatal(err)
	}
	b := bundle("llama3.1:70b")
	before := b.ReadConfig(t)
	assertRefused(t, s, b, before, runContainer(t, s, b), "24.0 GiB", "GPU inventory")
	if res := runContainer(t, s, bundle("llama3.1:8b")); res.Code != 0 {
		t.Fatalf("an 8B model fits 24 GiB: %s", res)
	}
}
