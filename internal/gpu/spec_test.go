package gpu_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"tags.cncf.io/container-device-interface/pkg/cdi"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

func generate(t *testing.T, opts gpu.GenerateOptions) []byte {
	t.Helper()
	data, _, err := gpu.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestGenerateGolden(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 2, MIG: true, Compat32: true, LDCache: true})
	for _, tc := range []struct {
		name string
		opts gpu.GenerateOptions
	}{
		{"simroot-2gpu-mig.yaml", gpu.GenerateOptions{Format: "yaml"}},
		{"simroot-2gpu-mig.json", gpu.GenerateOptions{Format: "json"}},
		{"simroot-2gpu-uuid.yaml", gpu.GenerateOptions{DeviceNameStrategies: []string{"uuid"}}},
	} {
		opts := tc.opts
		opts.DriverRoot, opts.HookPath, opts.Generator = r.Dir, hookPath, "nvbind test"
		first := generate(t, opts)
		if again := generate(t, opts); !bytes.Equal(first, again) {
			t.Errorf("%s: two runs differ", tc.name)
		}
		// Every spec must load with the CDI library as a consumer reads it.
		if err := gpu.Validate(first); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		golden(t, tc.name, r.Dir, first)
	}
}

func loadSpec(t *testing.T, data []byte) *cdi.Spec {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "nvidia.yaml")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := cdi.ReadSpec(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mountPaths(e specs.ContainerEdits) []string {
	var out []string
	for _, m := range e.Mounts {
		out = append(out, m.ContainerPath)
	}
	return out
}

func nodePaths(e specs.ContainerEdits) []string {
	var out []string
	for _, n := range e.DeviceNodes {
		out = append(out, n.Path)
	}
	return out
}

func TestSpecContent(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 2, MIG: true, LDCache: true})
	s := loadSpec(t, generate(t, gpu.GenerateOptions{DriverRoot: r.Dir, HookPath: hookPath}))
	v := r.DriverVersion

	if s.Version != "0.5.0" || s.Kind != "nvidia.com/gpu" {
		t.Errorf("version %q kind %q", s.Version, s.Kind)
	}
	if got := gpu.SpecDriverVersion(s); got != v {
		t.Errorf("SpecDriverVersion = %q, want %q", got, v)
	}
	for _, name := range []string{"0", "1", r.GPUs[1].UUID, "0:0", "1:1", "all", "driver",
		"capability-graphics", "capability-video", "capability-display", "capability-ngx"} {
		if s.GetDevice(name) == nil {
			t.Errorf("no device %q", name)
		}
	}
	if s.GetDevice("capability-compat32") != nil {
		t.Error("capability-compat32 without 32-bit libraries")
	}

	// GPU 1: its node, its DRM nodes by PCI bus, the by-path links.
	one := s.GetDevice("1").ContainerEdits
	if got := nodePaths(one); !slices.Equal(got, []string{"/dev/nvidia1", "/dev/dri/card2", "/dev/dri/renderD129"}) {
		t.Errorf("device 1 nodes = %v", got)
	}
	if one.DeviceNodes[0].HostPath != filepath.Join(r.Dir, "dev/nvidia1") {
		t.Errorf("device 1 host path = %q", one.DeviceNodes[0].HostPath)
	}
	// MIG 1:1 = GPU 1, GI 2 / CI 0: parent node plus its two caps nodes.
	mig := nodePaths(s.GetDevice("1:1").ContainerEdits)
	wantMIG := []string{"/dev/nvidia1", "/dev/nvidia-caps/nvidia-cap" + itoa(simroot.MIGMinor(1, 2, -1)), "/dev/nvidia-caps/nvidia-cap" + itoa(simroot.MIGMinor(1, 2, 0))}
	if !slices.Equal(mig, wantMIG) {
		t.Errorf("MIG 1:1 nodes = %v, want %v", mig, wantMIG)
	}
	if all := nodePaths(s.GetDevice("all").ContainerEdits); !slices.Contains(all, "/dev/nvidia0") || !slices.Contains(all, "/dev/nvidia1") {
		t.Errorf("all nodes = %v", all)
	}
	if d := s.GetDevice("driver").ContainerEdits; slices.ContainsFunc(nodePaths(d), func(p string) bool { return strings.HasPrefix(p, "/dev/nvidia") && p != "/dev/nvidiactl" }) {
		t.Errorf("driver device has GPU nodes: %v", nodePaths(d))
	}

	// Common edits: control nodes, compute + utility only, hooks.
	common := s.ContainerEdits
	if got := nodePaths(common); !slices.Equal(got, []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"}) {
		t.Errorf("common nodes = %v", got)
	}
	mounts := mountPaths(common)
	for _, want := range []string{lib64 + "libcuda.so." + v, lib64 + "libnvidia-ml.so." + v, "/usr/bin/nvidia-smi", "/run/nvidia-persistenced/socket", "/usr/lib/firmware/nvidia/" + v + "/gsp_ga10x.bin"} {
		if !slices.Contains(mounts, want) {
			t.Errorf("common mounts lack %s", want)
		}
	}
	for _, m := range mounts {
		if strings.Contains(m, "GLX") || strings.Contains(m, "vulkan") || strings.Contains(m, "nvcuvid") {
			t.Errorf("compute container would get %s", m)
		}
	}
	var hooks []string
	for _, h := range common.Hooks {
		if h.Path != hookPath || h.HookName != "createContainer" || h.Args[0] != "nvbind-hook" {
			t.Errorf("hook %+v", h)
		}
		hooks = append(hooks, strings.Join(h.Args[1:], " "))
	}
	if len(hooks) != 2 || !strings.HasPrefix(hooks[0], "create-symlinks --link ") || hooks[1] != "update-ldcache --folder /usr/lib/x86_64-linux-gnu" {
		t.Errorf("common hooks = %q", hooks)
	}
	if !strings.Contains(hooks[0], "libcuda.so."+v+"::"+lib64+"libcuda.so.1") {
		t.Errorf("no libcuda SONAME link in %q", hooks[0])
	}

	// Graphics brings the ICD files; display brings graphics and modeset.
	g := mountPaths(s.GetDevice("capability-graphics").ContainerEdits)
	if !slices.Contains(g, "/usr/share/vulkan/icd.d/nvidia_icd.json") || !slices.Contains(g, lib64+"libGLX_nvidia.so."+v) {
		t.Errorf("capability-graphics mounts = %v", g)
	}
	disp := s.GetDevice("capability-display").ContainerEdits
	if !slices.Contains(nodePaths(disp), "/dev/nvidia-modeset") || !slices.Contains(mountPaths(disp), lib64+"libGLX_nvidia.so."+v) {
		t.Errorf("capability-display = %v %v", nodePaths(disp), mountPaths(disp))
	}
	// Libraries and binaries stay executable; data files do not.
	for _, m := range append(common.Mounts, s.GetDevice("capability-graphics").ContainerEdits.Mounts...) {
		noexec := slices.Contains(m.Options, "noexec")
		executable := strings.Contains(m.ContainerPath, ".so") || strings.HasPrefix(m.ContainerPath, "/usr/bin/")
		if executable == noexec {
			t.Errorf("mount %s options %v", m.ContainerPath, m.Options)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// With the driver at / (no hostPath) and names by UUID only, nothing in the
// spec needs more than CDI 0.3.0, and the spec says so.
func TestLowestCDIVersion(t *testing.T) {
	inv := &gpu.Inventory{DriverRoot: "/", DriverVersion: "580.95.05", GPUs: []gpu.GPU{{Minor: 0, UUID: "GPU-a", BusID: "0000:99:00.0"}}}
	files := &gpu.DriverFiles{Root: "/", Version: "580.95.05", Sets: map[gpu.Capability]*gpu.FileSet{
		gpu.CapCompute: {Libraries: []string{lib64 + "libcuda.so.580.95.05"}, Folders: []string{"/usr/lib/x86_64-linux-gnu"}},
	}}
	for _, tc := range []struct {
		names []string
		want  string
	}{{[]string{"uuid"}, "0.3.0"}, {[]string{"index"}, "0.5.0"}, {nil, "0.5.0"}} {
		spec, err := gpu.BuildSpec(inv, files, gpu.GenerateOptions{HookPath: hookPath, DeviceNameStrategies: tc.names})
		if err != nil {
			t.Fatal(err)
		}
		if spec.Version != tc.want {
			t.Errorf("names %v: cdiVersion %s, want %s", tc.names, spec.Version, tc.want)
		}
		data, err := gpu.Encode(spec, "yaml", "t")
		if err != nil {
			t.Fatal(err)
		}
		if err := gpu.Validate(data); err != nil {
			t.Errorf("names %v: %v", tc.names, err)
		}
	}
}

func TestGenerateOptionErrors(t *testing.T) {
	for _, opts := range []gpu.GenerateOptions{
		{HookPath: "nvbind-hook"},
		{HookPath: ""},
		{HookPath: hookPath, Format: "toml"},
		{HookPath: hookPath, DeviceNameStrategies: []string{"serial"}},
	} {
		if _, _, err := gpu.Generate(opts); err == nil {
			t.Errorf("%+v accepted", opts)
		}
	}
}
