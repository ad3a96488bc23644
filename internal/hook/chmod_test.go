package hook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]os.FileMode{"0666": 0o666, "755": 0o755, "0": 0, "0777": 0o777} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "4755", "1777", "0888", "rw", "-1", "0x1ff", "99999999999"} {
		if got, err := ParseMode(in); err == nil {
			t.Errorf("ParseMode(%q) = %v, want an error", in, got)
		}
	}
}

func TestChmod(t *testing.T) {
	rootfs := t.TempDir()
	put(t, rootfs, "/dev/nvidia0", nil)
	os.Chmod(filepath.Join(rootfs, "dev/nvidia0"), 0o600)
	os.MkdirAll(filepath.Join(rootfs, "dev/dri"), 0o700)
	h, _ := newHook(t, rootfs)
	for round := 0; round < 2; round++ {
		if err := h.Chmod(0o666, []string{"/dev/nvidia0", "/dev/dri"}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"dev/nvidia0", "dev/dri"} {
			if fi, err := os.Stat(filepath.Join(rootfs, p)); err != nil || fi.Mode().Perm() != 0o666 {
				t.Errorf("%s: %v %v, want mode 0666", p, fi.Mode(), err)
			}
		}
	}
	if err := h.Chmod(0o666, []string{"/dev/missing"}); err == nil || !strings.Contains(err.Error(), "/dev/missing") {
		t.Errorf("chmod of a missing path: %v", err)
	}
}

// TestChmodHostileRootfs: a symlink to a host file, as the path itself or
// as a parent dir, never makes the hook change a host file's mode.
func TestChmodHostileRootfs(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, rootfs, host string)
		path  string
	}{
		{"path is a symlink to a host file", func(t *testing.T, rootfs, host string) {
			link(t, host+"/secret", rootfs, "dev/nvidia0")
		}, "/dev/nvidia0"},
		{"path is a symlink inside the rootfs", func(t *testing.T, rootfs, host string) {
			put(t, rootfs, "/etc/shadow", []byte("x"))
			link(t, "/etc/shadow", rootfs, "dev/nvidia0")
		}, "/dev/nvidia0"},
		{"parent is a symlink to a host dir", func(t *testing.T, rootfs, host string) {
			link(t, host, rootfs, "dev")
		}, "/dev/secret"},
		{"path climbs with ..", func(t *testing.T, rootfs, host string) {}, "/../../../../../..HOST/secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rootfs, host := t.TempDir(), t.TempDir()
			put(t, "/", host+"/secret", []byte("host"))
			os.Chmod(host+"/secret", 0o600)
			before := snapshot(t, host)
			tt.setup(t, rootfs, host)
			h, _ := newHook(t, rootfs)
			if err := h.Chmod(0o666, []string{strings.Replace(tt.path, "HOST", host, 1)}); err == nil {
				t.Errorf("chmod succeeded, want an error")
			}
			if after := snapshot(t, host); after != before {
				t.Errorf("host dir changed:\n%s\nwas:\n%s", after, before)
			}
			if fi, err := os.Stat(filepath.Join(rootfs, "etc/shadow")); err == nil && fi.Mode().Perm() != 0o755 {
				t.Errorf("the link's target in the rootfs was changed: %v", fi.Mode())
			}
		})
	}
}

// TestFchmodProc covers the path taken on kernels before 6.6.
func TestFchmodProc(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, nil, 0o600)
	f, err := os.OpenFile(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := fchmodProc(f, 0o640); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode())
	}
}
