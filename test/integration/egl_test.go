package integration

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

// TestEGLPlatformLibrariesWithoutLinks: on a driver root that ships the
// EGL platform libraries (own versions) without their SONAME links, a
// graphics container still gets each library and the link its
// egl_external_platform.d JSON names.
func TestEGLPlatformLibrariesWithoutLinks(t *testing.T) {
	requireRoot(t)
	s := newSimRootDirs(t, 1)
	if _, err := simroot.Build(s.Dir, simroot.Options{GPUs: 1, LDCache: true, NoOwnVersionLinks: true}); err != nil {
		t.Fatal(err)
	}
	s.WriteConfig(t, "")
	if res := runCmd(t, s.Env(), bins.CLI, "cdi", "generate", "--driver-root", s.Dir,
		"--output", filepath.Join(s.SpecDir, "nvidia.yaml"), "--hook-path", bins.Hook, "--no-nvml"); res.Code != 0 {
		t.Fatalf("generate: %s", res)
	}
	const dir = "/usr/lib/x86_64-linux-gnu/"
	libs := []string{"libnvidia-egl-gbm.so.1", "libnvidia-egl-wayland.so.1", "libnvidia-egl-xcb.so.1", "libnvidia-egl-xlib.so.1"}
	b := newBundle(t, "sh", "-c", "cd "+dir+" && for l in "+strings.Join(libs, " ")+"; do readlink $l; test -s $l || echo MISSING $l; done")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=graphics")
	b.Save(t)
	res := runContainer(t, s, b)
	if res.Code != 0 {
		t.Fatalf("container: %s", res)
	}
	for _, want := range []string{"libnvidia-egl-gbm.so.1.1.2", "libnvidia-egl-wayland.so.1.1.19", "libnvidia-egl-xcb.so.1.0.1", "libnvidia-egl-xlib.so.1.0.1"} {
		if !strings.Contains(res.Stdout, want+"\n") {
			t.Errorf("no link to %s in the container:\n%s", want, res.Stdout)
		}
	}
	if strings.Contains(res.Stdout, "MISSING") {
		t.Errorf("libraries missing:\n%s", res.Stdout)
	}
}
