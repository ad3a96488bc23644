package gpu_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

const lib64 = "/usr/lib/x86_64-linux-gnu/"

func TestFindDriverFiles(t *testing.T) {
	for _, ldcache := range []bool{true, false} {
		r := buildRoot(t, simroot.Options{GPUs: 1, Compat32: true, LDCache: ldcache})
		d, err := gpu.FindDriverFiles(r.Dir, r.DriverVersion)
		if err != nil {
			t.Fatal(err)
		}
		v := r.DriverVersion
		checks := []struct {
			cap  gpu.Capability
			list []string
			want []string
		}{
			{gpu.CapUtility, d.Set(gpu.CapUtility).Libraries, []string{lib64 + "libnvidia-ml.so." + v, lib64 + "libnvidia-cfg.so." + v}},
			{gpu.CapUtility, d.Set(gpu.CapUtility).Binaries, []string{"/usr/bin/nvidia-smi", "/usr/bin/nvidia-debugdump", "/usr/bin/nvidia-persistenced"}},
			{gpu.CapUtility, d.Set(gpu.CapUtility).Files, []string{"/usr/lib/firmware/nvidia/" + v + "/gsp_ga10x.bin"}},
			{gpu.CapUtility, d.Set(gpu.CapUtility).IPC, []string{"/run/nvidia-persistenced/socket"}},
			{gpu.CapCompute, d.Set(gpu.CapCompute).Libraries, []string{lib64 + "libcuda.so." + v, lib64 + "libnvidia-ptxjitcompiler.so." + v, lib64 + "libnvidia-nvvm.so." + v}},
			{gpu.CapCompute, d.Set(gpu.CapCompute).Binaries, []string{"/usr/bin/nvidia-cuda-mps-control"}},
			{gpu.CapGraphics, d.Set(gpu.CapGraphics).Libraries, []string{lib64 + "libGLX_nvidia.so." + v, lib64 + "libnvidia-egl-gbm.so.1.1.2"}},
			{gpu.CapGraphics, d.Set(gpu.CapGraphics).Files, []string{"/usr/share/vulkan/icd.d/nvidia_icd.json", "/usr/share/glvnd/egl_vendor.d/10_nvidia.json", "/usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json"}},
			{gpu.CapVideo, d.Set(gpu.CapVideo).Libraries, []string{lib64 + "vdpau/libvdpau_nvidia.so." + v, lib64 + "libnvcuvid.so." + v}},
			{gpu.CapDisplay, d.Set(gpu.CapDisplay).Nodes, []string{"/dev/nvidia-modeset"}},
			{gpu.CapNGX, d.Set(gpu.CapNGX).Libraries, []string{lib64 + "libnvidia-ngx.so." + v}},
			{gpu.CapCompat32, d.Set(gpu.CapCompat32).Libraries, []string{"/usr/lib/i386-linux-gnu/libcuda.so." + v}},
		}
		for _, c := range checks {
			for _, w := range c.want {
				if !slices.Contains(c.list, w) {
					t.Errorf("ldcache=%v: %s lacks %s: %v", ldcache, c.cap, w, c.list)
				}
			}
		}
		// Compute brings no graphics, and the 64-bit sets hold no 32-bit file.
		for _, c := range []gpu.Capability{gpu.CapUtility, gpu.CapCompute} {
			for _, l := range d.Set(c).Libraries {
				if strings.Contains(l, "GL") || strings.Contains(l, "i386") || strings.Contains(l, "egl") {
					t.Errorf("ldcache=%v: %s has %s", ldcache, c, l)
				}
			}
		}
		link := gpu.Link{Target: "libcuda.so." + v, Link: lib64 + "libcuda.so.1"}
		if !slices.Contains(d.Set(gpu.CapCompute).Links, link) {
			t.Errorf("ldcache=%v: no SONAME link %v in %v", ldcache, link, d.Set(gpu.CapCompute).Links)
		}
		if got := d.Set(gpu.CapCompute).Folders; !slices.Equal(got, []string{"/usr/lib/x86_64-linux-gnu"}) {
			t.Errorf("ldcache=%v: compute folders = %v", ldcache, got)
		}
	}
}

// A leftover library of an older driver that no link points at is not
// mounted; the file the SONAME link names is.
func TestFindDriverFilesIgnoresStaleVersions(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 1})
	old := filepath.Join(r.Dir, "usr/lib/x86_64-linux-gnu/libcuda.so.470.256.02")
	if err := os.WriteFile(old, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := gpu.FindDriverFiles(r.Dir, r.DriverVersion)
	if err != nil {
		t.Fatal(err)
	}
	libs := d.Set(gpu.CapCompute).Libraries
	if slices.Contains(libs, lib64+"libcuda.so.470.256.02") || !slices.Contains(libs, lib64+"libcuda.so."+r.DriverVersion) {
		t.Errorf("compute libraries = %v", libs)
	}
}

// A symlink in the driver root that points outside it is read as if the
// root were /: it never leads to the host's files.
func TestFindDriverFilesStaysInRoot(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 1})
	bin := filepath.Join(r.Dir, "usr/bin/nvidia-smi")
	os.Remove(bin)
	if err := os.Symlink("/../../../../bin/sh", bin); err != nil {
		t.Fatal(err)
	}
	d, err := gpu.FindDriverFiles(r.Dir, r.DriverVersion)
	if err != nil {
		t.Fatal(err)
	}
	// /bin/sh inside the root does not exist, so nvidia-smi is not found.
	for _, b := range d.Set(gpu.CapUtility).Binaries {
		if strings.Contains(b, "sh") && !strings.Contains(b, "nvidia") {
			t.Errorf("binary %s resolved outside the root", b)
		}
	}
	if slices.Contains(d.Set(gpu.CapUtility).Binaries, "/usr/bin/nvidia-smi") {
		t.Error("dangling nvidia-smi link reported as a binary")
	}
}

func TestFindLibrary(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 1, LDCache: true})
	p, ok := gpu.FindLibrary(r.Dir, "libnvidia-ml.so.1")
	if !ok || p != filepath.Join(r.Dir, lib64+"libnvidia-ml.so."+r.DriverVersion) {
		t.Errorf("FindLibrary = %q, %v", p, ok)
	}
	if _, ok := gpu.FindLibrary(r.Dir, "libnope.so.1"); ok {
		t.Error("found a library that does not exist")
	}
}
