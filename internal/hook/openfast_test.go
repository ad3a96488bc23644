package hook

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestResolveInRoot: openat2's lookups and securejoin's give the same
// answers, and neither leaves the root: symlinks to absolute paths, ".."
// chains and magic links are resolved inside it or refused; mkdirAll makes
// missing folders inside the root, through symlinked parents, and refuses
// a file in the way.
func TestResolveInRoot(t *testing.T) {
	for _, slow := range []bool{false, true} {
		name := "openat2"
		if slow {
			name = "securejoin"
		}
		t.Run(name, func(t *testing.T) {
			noOpenat2 = slow
			defer func() { noOpenat2 = false }()
			base := t.TempDir()
			rootfs, outside := filepath.Join(base, "rootfs"), filepath.Join(base, "outside")
			for _, d := range []string{rootfs + "/usr/lib", rootfs + "/etc", outside + "/lib"} {
				os.MkdirAll(d, 0o755)
			}
			os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o644)
			os.WriteFile(filepath.Join(rootfs, "etc/secret"), []byte("image"), 0o644)
			os.WriteFile(filepath.Join(rootfs, "file"), nil, 0o644)
			os.Symlink(outside, filepath.Join(rootfs, "abs"))                  // /abs -> host path: /abs in the root
			os.Symlink("../../../../outside", filepath.Join(rootfs, "dotdot")) // .. stops at the root
			os.Symlink("/etc", filepath.Join(rootfs, "lib"))
			os.Symlink("/proc/self/root", filepath.Join(rootfs, "magic"))
			r, err := OpenRoot(rootfs)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()

			// Reads resolve inside the root.
			if data, err := r.readFile("/lib/secret", 100); err != nil || string(data) != "image" {
				t.Errorf("readFile /lib/secret = %q, %v; want the image's file", data, err)
			}
			for _, p := range []string{"/abs/secret", "/dotdot/secret", "/magic/etc/passwd"} {
				if data, err := r.readFile(p, 100); err == nil {
					t.Errorf("readFile %s = %q, want an error", p, data)
				}
			}
			if _, err := r.openDir("/file"); !errors.Is(err, unix.ENOTDIR) {
				t.Errorf("openDir /file: %v, want ENOTDIR", err)
			}
			if _, err := r.openDir("/missing"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("openDir /missing: %v, want not exist", err)
			}

			// mkdirAll makes folders inside the root only.
			for _, c := range []struct{ p, want string }{
				{"/usr/lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"},
				{"/dev/dri/by-path/", "dev/dri/by-path"}, // as path.Split gives it
				{"/lib/sub", "etc/sub"},
			} {
				d, err := r.mkdirAll(c.p)
				if err != nil {
					t.Errorf("mkdirAll %s: %v", c.p, err)
					continue
				}
				d.Close()
				if fi, err := os.Stat(filepath.Join(rootfs, c.want)); err != nil || !fi.IsDir() {
					t.Errorf("mkdirAll %s: %s not made in the root: %v", c.p, c.want, err)
				}
			}
			if entries, _ := os.ReadDir(filepath.Join(outside, "lib")); len(entries) != 0 {
				t.Errorf("mkdirAll wrote outside the root: %v", entries)
			}
			if _, err := os.Stat(filepath.Join(base, "x")); err == nil {
				t.Error("mkdirAll /dotdot/x wrote above the root")
			}
			// A symlink whose target is missing in the root (an absolute host
			// path, a ".." chain), a file or a magic link in the way: refused.
			for _, p := range []string{"/abs/lib/new", "/dotdot/x", "/file/sub", "/magic/tmp/x"} {
				if d, err := r.mkdirAll(p); err == nil {
					d.Close()
					t.Errorf("mkdirAll %s succeeded", p)
				}
			}
		})
	}
}
