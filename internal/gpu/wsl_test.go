package gpu_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

func TestDetectWSL(t *testing.T) {
	r := buildRoot(t, simroot.Options{WSL: true})
	w := gpu.DetectWSL(r.Dir)
	if w == nil {
		t.Fatal("WSL2 root not detected")
	}
	if w.Problem != "" || w.KernelRelease != simroot.WSLKernelRelease || w.DriverStore != r.WSLStore {
		t.Fatalf("got %+v", w)
	}
	if len(w.Stores) != 2 {
		t.Errorf("stores %v, want the NVIDIA and the Intel one", w.Stores)
	}
	if v, err := gpu.ReadDriverVersion(r.Dir); err != nil || v != "wsl-"+simroot.WSLStoreName {
		t.Errorf("ReadDriverVersion = %q, %v", v, err)
	}
	// A Linux root is not WSL2.
	lin := buildRoot(t, simroot.Options{GPUs: 1})
	if w := gpu.DetectWSL(lin.Dir); w != nil {
		t.Errorf("Linux root seen as WSL2: %+v", w)
	}
}

func TestDetectWSLProblems(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(dir string)
		want   string
	}{
		{"no dxg", func(d string) { os.Remove(filepath.Join(d, "dev/dxg")) }, "without /dev/dxg"},
		{"no libcuda stub", func(d string) { os.Remove(filepath.Join(d, "usr/lib/wsl/lib/libcuda.so.1")) }, "libcuda.so.1"},
		{"no NVIDIA store", func(d string) {
			os.Remove(filepath.Join(d, "usr/lib/wsl/drivers", simroot.WSLStoreName, "libcuda.so.1.1"))
		}, "no folder under /usr/lib/wsl/drivers holds libcuda.so.1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := buildRoot(t, simroot.Options{WSL: true})
			tt.break_(r.Dir)
			w := gpu.DetectWSL(r.Dir)
			if w == nil || !strings.Contains(w.Problem, tt.want) {
				t.Fatalf("got %+v, want problem %q", w, tt.want)
			}
			_, err := gpu.ReadDriverVersion(r.Dir)
			if !errors.Is(err, gpu.ErrNoDriver) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadDriverVersion error %v", err)
			}
			inv, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: r.Dir})
			if err != nil || inv.Source != gpu.SourceNone || !strings.Contains(inv.Note, tt.want) {
				t.Errorf("Discover = %+v, %v", inv, err)
			}
		})
	}
}

// Two NVIDIA stores (Windows kept an older driver's): the newest wins.
func TestWSLNewestStoreWins(t *testing.T) {
	r := buildRoot(t, simroot.Options{WSL: true})
	old := filepath.Join(r.Dir, "usr/lib/wsl/drivers/nv_dispi.inf_amd64_0000old")
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(old, "libcuda.so.1.1")
	os.WriteFile(lib, []byte("old"), 0o644)
	past := time.Now().Add(-48 * time.Hour)
	os.Chtimes(lib, past, past)
	if w := gpu.DetectWSL(r.Dir); w.DriverStore != r.WSLStore {
		t.Errorf("store %s, want %s", w.DriverStore, r.WSLStore)
	}
}

func TestWSLSpec(t *testing.T) {
	r := buildRoot(t, simroot.Options{WSL: true})
	data, inv, err := gpu.Generate(gpu.GenerateOptions{DriverRoot: r.Dir, HookPath: hookPath, Format: "yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Source != gpu.SourceWSL || inv.WSL == nil || inv.DriverVersion != r.DriverVersion {
		t.Errorf("inventory %+v", inv)
	}
	if err := gpu.Validate(data); err != nil {
		t.Fatal(err)
	}
	golden(t, "simroot-wsl2.yaml", r.Dir, data)
	s := string(data)
	for _, want := range []string{
		"name: all", `name: "0"`, "name: driver", "/dev/dxg",
		"/usr/lib/wsl/lib/libcuda.so.1", "/usr/lib/wsl/lib/libnvidia-ml.so.1", "/usr/lib/wsl/lib/libdxcore.so",
		"/usr/lib/wsl/drivers/" + simroot.WSLStoreName,
		"../lib/wsl/lib/nvidia-smi::/usr/bin/nvidia-smi", "update-ldcache", "--folder", "NVBIND_DRIVER_VERSION=wsl-",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("spec lacks %q", want)
		}
	}
	if strings.Contains(s, simroot.WSLOtherStore) {
		t.Error("spec mounts the Intel driver store")
	}
	// The runtime's JIT spec is the same, in JSON.
	path := filepath.Join(t.TempDir(), "nvidia.json")
	if err := gpu.WriteJITSpec(path, gpu.GenerateOptions{DriverRoot: r.Dir, HookPath: hookPath, Format: "json"}); err != nil {
		t.Fatal(err)
	}
	if v, _ := gpu.SpecFileDriverVersion(path); v != r.DriverVersion {
		t.Errorf("JIT spec records %q", v)
	}
}

func TestExplainMissingWSL(t *testing.T) {
	r := buildRoot(t, simroot.Options{WSL: true})
	for _, tt := range []struct {
		names []string
		want  string
	}{
		{[]string{"all"}, ""},
		{[]string{"0"}, ""},
		{[]string{"1"}, "GPU 1: WSL2 shares"},
		{[]string{"GPU-1234"}, "cannot give a container single GPUs"},
	} {
		err := gpu.ExplainMissing(r.Dir, tt.names)
		if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.names, err, tt.want)
		}
	}
}

// fakeNVML stands in for WSL's libnvidia-ml.so.1.
type fakeNVML struct {
	inv *gpu.Inventory
	err error
}

func (f fakeNVML) Inventory() (*gpu.Inventory, error) { return f.inv, f.err }

// On WSL2 NVML (when it loads) gives names and memory; the inventory the
// CLI saves then serves the runtime's ollama fit check, and the recorded
// driver identity is the driver store's on both paths.
func TestWSLInventoryFromNVML(t *testing.T) {
	r := buildRoot(t, simroot.Options{WSL: true})
	nv := fakeNVML{inv: &gpu.Inventory{DriverVersion: "566.03", CUDAVersion: "12.7", GPUs: []gpu.GPU{
		{Index: 0, Minor: -1, UUID: "GPU-wsl0", Name: simroot.WSLModel, MemoryBytes: 24 << 30},
	}}}
	inv, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: r.Dir, NVML: nv})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Source != gpu.SourceNVML || inv.DriverVersion != r.DriverVersion || inv.WSL.DriverVersion != "566.03" || len(inv.GPUs) != 1 {
		t.Fatalf("inventory %+v", inv)
	}
	cfg := config.Default()
	cfg.Driver.Root = r.Dir
	cfg.Driver.Inventory = filepath.Join(t.TempDir(), "inventory.json")
	if err := gpu.SaveInventory(cfg.Driver.Inventory, inv); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{"nvidia.com/gpu=all", "nvidia.com/gpu=0"} {
		mem, err := gpu.DeviceMemoryFor(cfg, []string{dev})
		if err != nil || len(mem) != 1 || mem[0] != 24<<30 {
			t.Errorf("%s: memory %v, %v", dev, mem, err)
		}
	}

	// NVML does not load: the files alone, and a note.
	inv, err = gpu.Discover(gpu.DiscoverOptions{DriverRoot: r.Dir, NVML: fakeNVML{err: errors.New("libnvidia-ml.so.1: cannot open")}})
	if err != nil || inv.Source != gpu.SourceWSL || !strings.Contains(inv.Note, "NVML not usable") {
		t.Fatalf("inventory %+v, %v", inv, err)
	}
	os.Remove(cfg.Driver.Inventory)
	if _, err := gpu.DeviceMemoryFor(cfg, []string{"nvidia.com/gpu=all"}); err == nil || !strings.Contains(err.Error(), "on WSL2 GPU memory comes from NVML") {
		t.Errorf("no WSL2 note: %v", err)
	}
}

// The CLI loads WSL's NVML from /usr/lib/wsl/lib, through the ld cache
// (ld.wsl.conf) or directly.
func TestFindLibraryWSL(t *testing.T) {
	for _, ldcache := range []bool{false, true} {
		r := buildRoot(t, simroot.Options{WSL: true, LDCache: ldcache})
		p, ok := gpu.FindLibrary(r.Dir, "libnvidia-ml.so.1")
		if want := filepath.Join(r.Dir, "usr/lib/wsl/lib/libnvidia-ml.so.1"); !ok || p != want {
			t.Errorf("ldcache=%v: %q, %v; want %s", ldcache, p, ok, want)
		}
	}
}
