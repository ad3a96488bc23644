package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

// simRoot builds a simulated driver root and points NVBIND_CONFIG at a
// config whose spec dir and JIT spec live in a temp dir.
func simRoot(t *testing.T, gpus int) (root, specDir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("simulated driver roots need root (mknod)")
	}
	base := t.TempDir()
	r, err := simroot.Build(filepath.Join(base, "driver"), simroot.Options{GPUs: gpus, LDCache: true})
	if err != nil {
		t.Fatal(err)
	}
	specDir = filepath.Join(base, "cdi")
	cfg := filepath.Join(base, "config.toml")
	os.WriteFile(cfg, []byte(`[runtime]
runtimes = ["runc"]
[cdi]
spec-dirs = ["`+specDir+`"]
jit-spec = "`+specDir+`/nvidia.yaml"
[driver]
root = "`+r.Dir+`"
[hook]
path = "/opt/nvbind/bin/nvbind-hook"
`), 0o644)
	t.Setenv("NVBIND_CONFIG", cfg)
	return r.Dir, specDir
}

func gpuCLI(f func([]string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := f(args, &out, &errb)
	return code, out.String(), errb.String()
}

func cdiCLI(args []string, out, errb *bytes.Buffer) int  { return cdiCmd(args, out, errb) }
func infoCLI(args []string, out, errb *bytes.Buffer) int { return infoCmd(args, out, errb) }

func TestCDIGenerateAndList(t *testing.T) {
	root, specDir := simRoot(t, 2)
	// Defaults come from the config: driver root, hook path, output path.
	code, out, errs := gpuCLI(cdiCLI, "generate")
	spec := filepath.Join(specDir, "nvidia.yaml")
	if code != 0 || out != "wrote "+spec+": driver 580.95.05, 2 GPU(s) (via procfs)\n" || errs != "" {
		t.Fatalf("generate: %d %q %q", code, out, errs)
	}
	data, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := gpu.Validate(data); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("path: /opt/nvbind/bin/nvbind-hook")) || !bytes.Contains(data, []byte(root+"/dev/nvidia1")) {
		t.Errorf("spec does not use the configured hook path and driver root")
	}
	code, out, errs = gpuCLI(cdiCLI, "list")
	if code != 0 || errs != "" {
		t.Fatalf("list: %d %q", code, errs)
	}
	for _, want := range []string{"nvidia.com/gpu=0\n", "nvidia.com/gpu=1\n", "nvidia.com/gpu=all\n", "nvidia.com/gpu=driver\n", "nvidia.com/gpu=capability-graphics\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
}

func TestCDIGenerateFormats(t *testing.T) {
	root, _ := simRoot(t, 1)
	dir := t.TempDir()
	code, _, errs := gpuCLI(cdiCLI, "generate", "--driver-root", root, "--output", filepath.Join(dir, "nvidia.json"), "--device-name-strategy", "uuid")
	if code != 0 {
		t.Fatalf("json: %d %s", code, errs)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "nvidia.json"))
	if !bytes.HasPrefix(data, []byte(`{"cdiVersion":`)) || bytes.Contains(data, []byte(`"name":"0"`)) || !bytes.Contains(data, []byte(`"name":"GPU-`)) {
		t.Errorf("not a uuid-only JSON spec:\n%.300s", data)
	}
	code, out, _ := gpuCLI(cdiCLI, "generate", "--driver-root", root, "--output", "-")
	if code != 0 || !strings.Contains(out, "kind: nvidia.com/gpu\n") {
		t.Errorf("stdout: %d %.200q", code, out)
	}
}

func TestCDIGenerateErrors(t *testing.T) {
	root, _ := simRoot(t, 1)
	dir := t.TempDir()
	out := filepath.Join(dir, "nvidia.yaml")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"generate", "--driver-root", t.TempDir(), "--output", out}, 1, "nvbind: cdi generate: cannot generate a CDI spec: no NVIDIA driver loaded"},
		{[]string{"generate", "--driver-root", root, "--output", out, "--format", "toml"}, 2, `nvbind: cdi generate: --format "toml" is not yaml or json`},
		{[]string{"generate", "--driver-root", root, "--output", out, "--device-name-strategy", "serial"}, 2, `--device-name-strategy "serial" is not index or uuid`},
		{[]string{"generate", "--driver-root", root, "--output", filepath.Join(dir, "nvidia.txt")}, 2, "must end in .yaml or .json"},
		{[]string{"generate", "--driver-root", root, "--output", out, "--hook-path", "nvbind-hook"}, 1, `hook path "nvbind-hook" is not absolute`},
		{[]string{"generate", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"generate", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"frobnicate"}, 2, `unknown subcommand "frobnicate"`},
		{nil, 2, "usage: nvbind cdi generate|list"},
	} {
		code, _, errs := gpuCLI(cdiCLI, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d with %q", tc.args, code, errs, tc.code, tc.msg)
		}
		if strings.Count(strings.TrimSpace(errs), "\n") > 0 && !strings.Contains(errs, "Usage") {
			t.Errorf("%v: more than one error line: %q", tc.args, errs)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("a failed generate left a spec behind")
	}
}

func TestCDIListReportsBrokenSpecs(t *testing.T) {
	_, specDir := simRoot(t, 1)
	os.MkdirAll(specDir, 0o755)
	os.WriteFile(filepath.Join(specDir, "broken.yaml"), []byte("cdiVersion: 9.9.9\nkind: x.com/y\ndevices: []\n"), 0o644)
	code, out, errs := gpuCLI(cdiCLI, "list")
	if code != 1 || out != "" || !strings.Contains(errs, "broken.yaml") {
		t.Errorf("exit %d out %q err %q", code, out, errs)
	}
}

// fakeNVML stands in for NVML: what procfs sees plus the memory only NVML
// knows.
type fakeNVML struct{ root string }

func (f fakeNVML) Inventory() (*gpu.Inventory, error) {
	inv, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: f.root})
	if err != nil {
		return nil, err
	}
	for i := range inv.GPUs {
		inv.GPUs[i].MemoryBytes = 80 << 30
	}
	return inv, nil
}

// With NVML, generate saves the GPU inventory the runtime's ollama profile
// reads GPU memory from.
func TestCDIGenerateSavesInventory(t *testing.T) {
	root, _ := simRoot(t, 2)
	inventory := filepath.Join(t.TempDir(), "run", "inventory.json")
	cfg := os.Getenv("NVBIND_CONFIG")
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(data), "[driver]\n", "[driver]\ninventory = \""+inventory+"\"\n", 1)), 0o644)
	saved := nvmlFor
	nvmlFor = func(string) gpu.NVMLSource { return fakeNVML{root} }
	defer func() { nvmlFor = saved }()

	code, out, errs := gpuCLI(cdiCLI, "generate")
	if code != 0 || !strings.Contains(out, "(via nvml)") || !strings.Contains(out, "wrote "+inventory+": GPU inventory for the runtime") {
		t.Fatalf("generate: %d %q %q", code, out, errs)
	}
	inv, err := gpu.LoadInventory(inventory)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := gpu.DeviceMemory(inv, "nvidia.com/gpu", []string{"nvidia.com/gpu=all"})
	if err != nil || len(mem) != 2 || mem[0] != 80<<30 {
		t.Fatalf("inventory memory %v %v", mem, err)
	}
}
