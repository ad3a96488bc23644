package gpu_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

// TestOwnVersionedLibrariesWithoutLinks: the EGL platform libraries, which
// carry their own version, are found when no SONAME link (and no ld cache
// entry that resolves) points at them, with the SONAME link to recreate;
// and a library an egl_external_platform.d JSON names is found through it.
func TestOwnVersionedLibrariesWithoutLinks(t *testing.T) {
	for _, ldcache := range []bool{true, false} {
		r := buildRoot(t, simroot.Options{GPUs: 1, LDCache: ldcache, NoOwnVersionLinks: true})
		// A platform library only its JSON names.
		os.WriteFile(filepath.Join(r.Dir, lib64, "libnvidia-egl-custom.so.2.0.7"), []byte("not ELF"), 0o755)
		os.WriteFile(filepath.Join(r.Dir, "usr/share/egl/egl_external_platform.d/30_nvidia_custom.json"),
			[]byte(`{"file_format_version":"1.0.0","ICD":{"library_path":"libnvidia-egl-custom.so.2"}}`), 0o644)
		d, err := gpu.FindDriverFiles(r.Dir, r.DriverVersion)
		if err != nil {
			t.Fatal(err)
		}
		g := d.Set(gpu.CapGraphics)
		links := map[string]string{}
		for _, l := range g.Links {
			links[l.Link] = l.Target
		}
		for file, soname := range map[string]string{
			"libnvidia-egl-gbm.so.1.1.2":      "libnvidia-egl-gbm.so.1",
			"libnvidia-egl-wayland.so.1.1.19": "libnvidia-egl-wayland.so.1",
			"libnvidia-egl-xcb.so.1.0.1":      "libnvidia-egl-xcb.so.1",
			"libnvidia-egl-xlib.so.1.0.1":     "libnvidia-egl-xlib.so.1",
			"libnvidia-egl-custom.so.2.0.7":   "libnvidia-egl-custom.so.2",
		} {
			if !slices.Contains(g.Libraries, lib64+file) {
				t.Errorf("ldcache=%v: %s not found: %v", ldcache, file, g.Libraries)
			}
			if got := links[lib64+soname]; got != file {
				t.Errorf("ldcache=%v: link %s -> %q, want %s", ldcache, soname, got, file)
			}
		}
	}
}
