//go:build cgo

package nvmlgpu_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/nvmlgpu"
	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// dgx returns go-nvml's DGX A100 mock (8 A100, driver 550.54.15, CUDA
// 12.4) made deterministic and given what the mock leaves out: PCI bus ids
// in NVML's 8-digit-domain form, and MIG device handles. withMIG puts every
// GPU in MIG mode with two 1g.5gb devices (GPU instances 1 and 2).
func dgx(t *testing.T, root *simroot.Root, withMIG bool) *dgxa100.Server {
	t.Helper()
	s := dgxa100.New()
	for i, d := range s.Devices {
		dev := d.(*dgxa100.Device)
		dev.UUID = root.GPUs[i].UUID
		bus := "0000" + root.GPUs[i].BusID // "00000000:07:00.0"
		dev.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
			var p nvml.PciInfo
			for k := range bus {
				p.BusId[k] = int8(strings.ToUpper(bus)[k])
			}
			return p, nvml.SUCCESS
		}
		if !withMIG {
			continue
		}
		dev.SetMigMode(nvml.DEVICE_MIG_ENABLE)
		dev.GpuInstanceCounter = 1
		gip, _ := dev.GetGpuInstanceProfileInfo(nvml.GPU_INSTANCE_PROFILE_1_SLICE)
		type mig struct{ gi, ci int }
		var migs []mig
		for k := 0; k < 2; k++ {
			gi, ret := dev.CreateGpuInstance(&gip)
			if ret != nvml.SUCCESS {
				t.Fatalf("create GPU instance: %v", ret)
			}
			cip, _ := gi.GetComputeInstanceProfileInfo(nvml.COMPUTE_INSTANCE_PROFILE_1_SLICE, nvml.COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
			if _, ret := gi.CreateComputeInstance(&cip); ret != nvml.SUCCESS {
				t.Fatalf("create compute instance: %v", ret)
			}
			info, _ := gi.GetInfo()
			migs = append(migs, mig{int(info.Id), 0})
		}
		sort.Slice(migs, func(a, b int) bool { return migs[a].gi < migs[b].gi })
		gpuIndex := i
		dev.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 7, nvml.SUCCESS }
		dev.GetMigDeviceHandleByIndexFunc = func(n int) (nvml.Device, nvml.Return) {
			if n >= len(migs) {
				return nil, nvml.ERROR_NOT_FOUND
			}
			m := migs[n]
			return &mock.Device{
				GetUUIDFunc: func() (string, nvml.Return) {
					return fmt.Sprintf("MIG-%08x-0000-4000-8000-%012x", gpuIndex, m.gi), nvml.SUCCESS
				},
				GetGpuInstanceIdFunc:     func() (int, nvml.Return) { return m.gi, nvml.SUCCESS },
				GetComputeInstanceIdFunc: func() (int, nvml.Return) { return m.ci, nvml.SUCCESS },
				GetMemoryInfoFunc:        func() (nvml.Memory, nvml.Return) { return nvml.Memory{Total: 4864 << 20}, nvml.SUCCESS },
				GetNameFunc:              func() (string, nvml.Return) { return "NVIDIA A100-SXM4-40GB MIG 1g.5gb", nvml.SUCCESS },
			}, nvml.SUCCESS
		}
	}
	return s
}

func buildRoot(t *testing.T, opts simroot.Options) *simroot.Root {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("simulated driver roots need root (mknod)")
	}
	r, err := simroot.Build(filepath.Join(t.TempDir(), "driver"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestInventoryFromDGXA100Mock(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 8, MIG: true, DriverVersion: "550.54.15"})
	inv, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: r.Dir, NVML: nvmlgpu.New(dgx(t, r, true))})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Source != gpu.SourceNVML || inv.DriverVersion != "550.54.15" || inv.CUDAVersion != "12.4" || len(inv.GPUs) != 8 {
		t.Fatalf("inventory: %+v", inv)
	}
	g := inv.GPUs[3]
	if g.Index != 3 || g.Minor != 3 || g.UUID != r.GPUs[3].UUID || g.BusID != "0000:4e:00.0" || g.Name != "Mock NVIDIA A100-SXM4-40GB" ||
		g.MemoryBytes != 40960<<20 || g.ComputeCapability != "8.0" || g.Brand != "nvidia" || !g.MIGEnabled {
		t.Errorf("GPU 3 = %+v", g)
	}
	if len(g.MIGDevices) != 2 || g.MIGDevices[1].GIID != 2 || g.MIGDevices[1].Profile != "1g.5gb" || !strings.HasPrefix(g.MIGDevices[1].UUID, "MIG-") {
		t.Errorf("GPU 3 MIG devices = %+v", g.MIGDevices)
	}
}

func TestGenerateGoldenDGXA100(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 8, MIG: true, DriverVersion: "550.54.15", LDCache: true})
	opts := gpu.GenerateOptions{DriverRoot: r.Dir, HookPath: "/usr/local/bin/nvbind-hook", Generator: "nvbind test",
		NVML: nvmlgpu.New(dgx(t, r, true))}
	data, inv, err := gpu.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Source != gpu.SourceNVML {
		t.Fatalf("source %s", inv.Source)
	}
	if err := gpu.Validate(data); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: \"7:1\"", "name: MIG-00000007-0000-4000-8000-000000000002", "NVBIND_DRIVER_VERSION=550.54.15"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("spec lacks %q", want)
		}
	}
	got := bytes.ReplaceAll(data, []byte(r.Dir), []byte("/ROOT"))
	path := filepath.Join("testdata", "dgxa100.yaml")
	if *update {
		os.WriteFile(path, got, 0o644)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("spec differs from %s:\n%s", path, got)
	}
}

func TestNVMLInitFailure(t *testing.T) {
	s := dgxa100.New()
	s.InitFunc = func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }
	src := nvmlgpu.New(s)
	_, err := src.Inventory()
	if err == nil || !strings.Contains(err.Error(), "NVML init") {
		t.Fatalf("err = %v", err)
	}
	// Init runs once: a second call reports the same failure without retrying.
	calls := 0
	s.InitFunc = func() nvml.Return { calls++; return nvml.SUCCESS }
	if _, err2 := src.Inventory(); err2 == nil || calls != 0 {
		t.Errorf("second Inventory: %v, %d Init calls", err2, calls)
	}
}

// A driver root whose libnvidia-ml.so.1 lacks NVML's symbols (the simulated
// one) must never be loaded: go-nvml would call into it and the process
// would die. Discovery falls back to procfs and says why.
func TestForRootRefusesLibraryWithoutNVML(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 2, LDCache: true})
	inv, err := nvmlgpu.Discover(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Source != gpu.SourceProcfs || len(inv.GPUs) != 2 || !strings.Contains(inv.Note, "does not export nvmlInit_v2") {
		t.Fatalf("inventory = %+v", inv)
	}
	if nvmlgpu.ForRoot(r.Dir) != nvmlgpu.ForRoot(r.Dir) {
		t.Error("ForRoot is not process-wide")
	}
	empty := t.TempDir()
	if _, err := nvmlgpu.ForRoot(empty).Inventory(); err == nil || !strings.Contains(err.Error(), "libnvidia-ml.so.1 not found") {
		t.Errorf("empty root: %v", err)
	}
}

// WSL2's NVML has no device minors (GetMinorNumber is not supported): the
// inventory still lists the GPU with its memory, for the ollama fit check,
// and records the driver store's identity.
func TestInventoryOnWSL2(t *testing.T) {
	r := buildRoot(t, simroot.Options{WSL: true})
	s := dgxa100.New()
	s.Devices = s.Devices[:1]
	dev := s.Devices[0].(*dgxa100.Device)
	dev.GetMinorNumberFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	inv, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: r.Dir, NVML: nvmlgpu.New(s)})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Source != gpu.SourceNVML || inv.WSL == nil || inv.DriverVersion != r.DriverVersion || inv.WSL.DriverVersion != "550.54.15" {
		t.Fatalf("inventory %+v", inv)
	}
	if len(inv.GPUs) != 1 || inv.GPUs[0].Minor != -1 || inv.GPUs[0].MemoryBytes != 40960<<20 {
		t.Errorf("GPUs %+v", inv.GPUs)
	}
}
