package hook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseLink(t *testing.T) {
	tests := []struct {
		in      string
		want    Link
		wantErr string
	}{
		{"libcuda.so.1::/usr/lib/x86_64-linux-gnu/libcuda.so", Link{"libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so"}, ""},
		{"/usr/lib/x::/a/../b/./c", Link{"/usr/lib/x", "/b/c"}, ""},
		{"a::b::/c", Link{"a", "b::/c"}, "not an absolute path"},
		{"libcuda.so.1", Link{}, "not TARGET::LINK"},
		{"::/x", Link{}, "not TARGET::LINK"},
		{"x::", Link{}, "not TARGET::LINK"},
		{"x::relative/link", Link{}, "not an absolute path"},
		{"x\x00y::/l", Link{}, "bad target"},
		{"x::/l\x00", Link{}, "NUL"},
		{"x::/", Link{"x", "/"}, ""}, // refused when made: it names the root
	}
	for _, tt := range tests {
		got, err := ParseLink(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseLink(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLink(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestCreateSymlinks(t *testing.T) {
	rootfs := t.TempDir()
	put(t, rootfs, libdir+"/libcuda.so.1", []byte("x"))
	link(t, "libcuda.so.0", rootfs, libdir+"/libwrong.so") // a stale link to repoint
	put(t, rootfs, libdir+"/libreal.so", []byte("image file"))
	h, warn := newHook(t, rootfs)
	links := []Link{
		{"libcuda.so.1", libdir + "/libcuda.so"},
		{"libcuda.so.1", libdir + "/libwrong.so"},
		{"libcuda.so.1", libdir + "/libreal.so"},
		{"/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/new/dir/made/libcuda.so"},
	}
	for round := 0; round < 2; round++ { // idempotent
		if err := h.CreateSymlinks(links); err != nil {
			t.Fatal(err)
		}
		for _, l := range []Link{links[0], links[1], links[3]} {
			if got, err := os.Readlink(filepath.Join(rootfs, l.Path)); err != nil || got != l.Target {
				t.Errorf("round %d: %s -> %q (%v), want %q", round, l.Path, got, err, l.Target)
			}
		}
		if data, err := os.ReadFile(filepath.Join(rootfs, libdir, "libreal.so")); err != nil || string(data) != "image file" {
			t.Errorf("an image's regular file was replaced: %q %v", data, err)
		}
	}
	if !strings.Contains(warn.String(), "leaving "+libdir+"/libreal.so alone") {
		t.Errorf("no warning for the regular file: %q", warn.String())
	}
	if err := h.CreateSymlinks([]Link{{"x", "/"}}); err == nil {
		t.Errorf("a link at / was accepted")
	}
}

// TestCreateSymlinksHostileRootfs: a parent dir that is a symlink out of
// the rootfs, or a link already in place that points out, never makes the
// hook create or change anything outside.
func TestCreateSymlinksHostileRootfs(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, rootfs, host string)
		link  string
		// inRoot is where the link must appear (HOST = host dir's path);
		// "" when the hook must fail.
		inRoot string
	}{
		{"parent is an absolute symlink to a host dir", func(t *testing.T, rootfs, host string) {
			link(t, host, rootfs, "usr/lib64")
			os.MkdirAll(filepath.Join(rootfs, host), 0o755)
		}, "/usr/lib64/libcuda.so", "HOST/libcuda.so"},
		{"parent is a .. chain", func(t *testing.T, rootfs, host string) {
			link(t, strings.Repeat("../", 30)+strings.TrimPrefix(host, "/"), rootfs, "usr/lib64")
			os.MkdirAll(filepath.Join(rootfs, host), 0o755)
		}, "/usr/lib64/libcuda.so", "HOST/libcuda.so"},
		{"parent is a dangling symlink to a host dir", func(t *testing.T, rootfs, host string) {
			link(t, host, rootfs, "usr/lib64")
		}, "/usr/lib64/libcuda.so", ""},
		{"link path climbs with ..", func(t *testing.T, rootfs, host string) {},
			"/../../../../../.." + "HOST/libcuda.so", "HOST/libcuda.so"},
		{"existing link points at a host file", func(t *testing.T, rootfs, host string) {
			link(t, host+"/keep", rootfs, "usr/lib/libcuda.so")
		}, "/usr/lib/libcuda.so", "usr/lib/libcuda.so"},
		{"parent is a link to a host file", func(t *testing.T, rootfs, host string) {
			link(t, host+"/keep", rootfs, "usr/lib64")
		}, "/usr/lib64/libcuda.so", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rootfs, host := t.TempDir(), t.TempDir()
			put(t, "/", host+"/keep", []byte("host file"))
			before := snapshot(t, host)
			tt.setup(t, rootfs, host)
			h, _ := newHook(t, rootfs)
			err := h.CreateSymlinks([]Link{{"libcuda.so.1", strings.Replace(tt.link, "HOST", host, 1)}})
			if after := snapshot(t, host); after != before {
				t.Errorf("host dir changed:\n%s\nwas:\n%s", after, before)
			}
			if tt.inRoot == "" {
				if err == nil {
					t.Fatal("CreateSymlinks succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(rootfs, strings.Replace(tt.inRoot, "HOST", host, 1))
			if got, err := os.Readlink(p); err != nil || got != "libcuda.so.1" {
				t.Errorf("link inside the rootfs at %s: %q, %v", p, got, err)
			}
		})
	}
}
