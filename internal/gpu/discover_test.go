package gpu_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

func TestDiscoverProcfs(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 3, MIG: true})
	inv, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Source != gpu.SourceProcfs || inv.DriverVersion != "580.95.05" || inv.CUDAVersion != "13.0" {
		t.Fatalf("inventory = %+v", inv)
	}
	if len(inv.GPUs) != 3 {
		t.Fatalf("found %d GPUs, want 3", len(inv.GPUs))
	}
	for i, g := range inv.GPUs {
		want := r.GPUs[i]
		if g.Index != i || g.Minor != want.Minor || g.UUID != want.UUID || g.BusID != want.BusID || g.Name != want.Name {
			t.Errorf("GPU %d = %+v, want %+v", i, g, want)
		}
		if g.ComputeCapability != "8.0" || !g.MIGEnabled || len(g.MIGDevices) != 2 {
			t.Errorf("GPU %d: cc %q MIG %v %+v", i, g.ComputeCapability, g.MIGEnabled, g.MIGDevices)
		}
		if g.MIGDevices[1].GIID != 2 || g.MIGDevices[1].CIID != 0 || g.MIGDevices[1].Index != 1 {
			t.Errorf("GPU %d MIG 1 = %+v", i, g.MIGDevices[1])
		}
	}
}

type failingNVML struct{}

func (failingNVML) Inventory() (*gpu.Inventory, error) {
	return nil, errors.New("libnvidia-ml.so.1 not found")
}

type fixedNVML struct{ inv *gpu.Inventory }

func (f fixedNVML) Inventory() (*gpu.Inventory, error) { return f.inv, nil }

func TestDiscoverFallsBackFromNVML(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 1})
	inv, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: r.Dir, NVML: failingNVML{}})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Source != gpu.SourceProcfs || len(inv.GPUs) != 1 || !strings.Contains(inv.Note, "NVML not usable (libnvidia-ml.so.1 not found); used procfs") {
		t.Fatalf("inventory = %+v", inv)
	}
}

func TestDiscoverPrefersNVML(t *testing.T) {
	nv := &gpu.Inventory{DriverVersion: "550.54.15", CUDAVersion: "12.4", GPUs: []gpu.GPU{{UUID: "GPU-x"}}}
	inv, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: "/somewhere", NVML: fixedNVML{nv}})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Source != gpu.SourceNVML || inv.DriverRoot != "/somewhere" || inv.GPUs[0].UUID != "GPU-x" {
		t.Fatalf("inventory = %+v", inv)
	}
}

func TestDiscoverNoDriverIsAStatement(t *testing.T) {
	inv, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: t.TempDir(), NVML: failingNVML{}})
	if err != nil {
		t.Fatalf("no driver must not be an error: %v", err)
	}
	if inv.Source != gpu.SourceNone || !strings.Contains(inv.Note, "no NVIDIA driver loaded") || len(inv.GPUs) != 0 {
		t.Fatalf("inventory = %+v", inv)
	}
	_, _, err = gpu.Generate(gpu.GenerateOptions{DriverRoot: t.TempDir(), HookPath: hookPath})
	if err == nil || !strings.Contains(err.Error(), "no NVIDIA driver loaded") {
		t.Fatalf("Generate without a driver: %v", err)
	}
}

func TestDiscoverDriverWithoutGPUs(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 0})
	inv, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Source != gpu.SourceProcfs || len(inv.GPUs) != 0 || !strings.Contains(inv.Note, "no GPU found") {
		t.Fatalf("inventory = %+v", inv)
	}
}

func TestDiscoverRejectsBrokenInformation(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 1})
	p := filepath.Join(r.Dir, "proc/driver/nvidia/gpus", r.GPUs[0].BusID, "information")
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte("Model: x\nDevice Minor: \t oops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: r.Dir})
	if err == nil || !strings.Contains(err.Error(), "bad Device Minor") || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v", err)
	}
}

func TestReadHostFacts(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 2, DriverVersion: "550.54.15"})
	f, err := gpu.ReadHostFacts(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if f.DriverVersion != "550.54.15" || f.CUDAVersion != "12.4" || len(f.Arch) != 2 || f.Arch[0] != "8.0" || f.Brand[0] != "nvidia" {
		t.Fatalf("facts = %+v", f)
	}
	err = gpu.CheckRequirements([]string{"NVIDIA_REQUIRE_CUDA=cuda>=12.8"}, f)
	if err == nil || !strings.Contains(err.Error(), "host has CUDA 12.4, driver 550.54.15") {
		t.Fatalf("err = %v", err)
	}
}
