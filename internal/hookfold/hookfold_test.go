package hookfold

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nvbind/nvbind/internal/gpu/simroot"
	"github.com/nvbind/nvbind/internal/hook"
	"github.com/nvbind/nvbind/internal/oci"
)

const (
	hookPath = "/usr/bin/nvbind-hook"
	libDir   = "/usr/lib/x86_64-linux-gnu"
)

// fixture is a bundle whose spec asks runc to mount a simulated driver's
// libraries and a DRM node, with nvbind's batch hook for links, the ld
// cache and /dev/dri's mode.
type fixture struct {
	driver, bundle, rootfs, linkDir string
	spec                            *rspec.Spec
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mknod for the simulated driver, and Fold only folds as root)")
	}
	dir := t.TempDir()
	f := &fixture{driver: filepath.Join(dir, "driver"), bundle: filepath.Join(dir, "bundle"), linkDir: filepath.Join(dir, "links")}
	if _, err := simroot.Build(f.driver, simroot.Options{GPUs: 1}); err != nil {
		t.Fatal(err)
	}
	f.rootfs = filepath.Join(f.bundle, "rootfs")
	for _, d := range []string{"etc", "bin", "dev", "proc", "usr/lib/x86_64-linux-gnu"} {
		os.MkdirAll(filepath.Join(f.rootfs, d), 0o755)
	}
	mode := os.FileMode(0o666)
	f.spec = &rspec.Spec{
		Version: "1.2.0",
		Mounts: []rspec.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
		},
		Linux: &rspec.Linux{Devices: []rspec.LinuxDevice{{Path: "/dev/dri/card1", Type: "c", Major: 226, Minor: 1, FileMode: &mode}}},
	}
	entries, err := os.ReadDir(filepath.Join(f.driver, libDir))
	if err != nil {
		t.Fatal(err)
	}
	links := []string{"create-symlinks"}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.Contains(name, ".so.580") {
			continue
		}
		f.spec.Mounts = append(f.spec.Mounts, rspec.Mount{Destination: libDir + "/" + name, Type: "bind",
			Source: filepath.Join(f.driver, libDir, name), Options: []string{"ro", "nosuid", "nodev", "rbind"}})
		if base, _, ok := strings.Cut(name, ".so."); ok {
			links = append(links, "--link", name+"::"+libDir+"/"+base+".so")
		}
	}
	links = append(links, "--link", "../card1::/dev/dri/by-path/pci-0000:01:00.0-card")
	f.spec.Hooks = &rspec.Hooks{CreateContainer: []rspec.Hook{
		{Path: "/usr/bin/other-hook", Args: []string{"other-hook"}},
		{Path: hookPath, Args: append(append(append([]string{"nvbind-hook", "batch"}, links...),
			"--and", "update-ldcache", "--folder", libDir), "--and", "chmod", "--mode", "755", "--path", "/dev/dri")},
	}}
	return f
}

func (f *fixture) container() Container { return Container{Bundle: f.bundle, Root: "rootfs"} }

func (f *fixture) options() Options {
	return Options{HookPath: hookPath, Runc: true, LinkDir: f.linkDir}
}

// TestFoldMatchesHook: what Fold leaves in the rootfs before runc is what
// nvbind-hook makes after runc's mounts: the same ld cache, byte for
// byte, and the same links; the /dev link comes as a mount of a folder
// holding it; the batch hook is gone and the other hook stays.
func TestFoldMatchesHook(t *testing.T) {
	folded := newFixture(t)
	hooked := newFixture(t)
	batch := hooked.spec.Hooks.CreateContainer[1]

	ok, why := Fold(folded.spec, folded.container(), folded.options())
	if !ok {
		t.Fatalf("not folded: %s", why)
	}
	if got := folded.spec.Hooks.CreateContainer; len(got) != 1 || got[0].Path != "/usr/bin/other-hook" {
		t.Errorf("hooks left: %+v", got)
	}
	last := folded.spec.Mounts[len(folded.spec.Mounts)-1]
	if last.Destination != "/dev/dri/by-path" || !slices.Contains(last.Options, "ro") {
		t.Fatalf("no read-only mount for the /dev links: %+v", last)
	}
	if target, err := os.Readlink(filepath.Join(last.Source, "pci-0000:01:00.0-card")); err != nil || target != "../card1" {
		t.Errorf("link folder: %q, %v", target, err)
	}

	// The hook's way: runc's bind mounts (copies here), then the hook.
	for _, m := range hooked.spec.Mounts {
		if m.Type == "bind" {
			data, _ := os.ReadFile(m.Source)
			os.WriteFile(filepath.Join(hooked.rootfs, m.Destination), data, 0o755)
		}
	}
	root, err := hook.OpenRoot(hooked.rootfs)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	h := &hook.Hook{Root: root}
	var links []hook.Link
	for i := 2; i < len(batch.Args) && batch.Args[i] != "--and"; i++ {
		if batch.Args[i] == "--link" && !strings.Contains(batch.Args[i+1], "/dev/") {
			l, _ := hook.ParseLink(batch.Args[i+1])
			links = append(links, l)
		}
	}
	if err := h.CreateSymlinks(links); err != nil {
		t.Fatal(err)
	}
	if err := h.UpdateLDCache([]string{libDir}); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(hooked.rootfs, "etc/ld.so.cache"))
	got, _ := os.ReadFile(filepath.Join(folded.rootfs, "etc/ld.so.cache"))
	if len(want) == 0 || !bytes.Equal(got, want) {
		t.Errorf("ld cache differs from the hook's (%d bytes, hook's %d)", len(got), len(want))
	}
	if !bytes.Contains(got, []byte("libcuda.so.1")) {
		t.Errorf("ld cache lacks libcuda.so.1")
	}
	if w, g := symlinks(t, hooked.rootfs), symlinks(t, folded.rootfs); !slices.Equal(w, g) {
		t.Errorf("links differ:\nhook: %v\nfold: %v", w, g)
	}

	// Again on the same rootfs (a restarted container): the same result.
	again := newFixture(t)
	again.rootfs, again.bundle = folded.rootfs, folded.bundle
	if ok, why := Fold(again.spec, again.container(), folded.options()); !ok {
		t.Fatalf("second fold: %s", why)
	}
	if g2, _ := os.ReadFile(filepath.Join(folded.rootfs, "etc/ld.so.cache")); !bytes.Equal(g2, got) {
		t.Errorf("a second fold changed the cache")
	}
}

// symlinks lists every symlink under dir with its target.
func symlinks(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			out = append(out, strings.TrimPrefix(p, dir)+" -> "+target)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// TestFoldKeepsHook: each thing Fold cannot do exactly keeps the hook,
// unchanged, and writes nothing into the rootfs.
func TestFoldKeepsHook(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(f *fixture, c *Container, o *Options)
		umask int
		why   string
	}{
		{"crun", func(f *fixture, c *Container, o *Options) { o.Runc = false }, 0o022, "not runc"},
		{"user namespace", func(f *fixture, c *Container, o *Options) { c.UserNS = true }, 0o022, "user namespace"},
		{"joined mount namespace", func(f *fixture, c *Container, o *Options) { c.JoinsMountNS = true }, 0o022, "mount namespace"},
		{"SELinux", func(f *fixture, c *Container, o *Options) {
			c.MountLabel = "system_u:object_r:container_file_t:s0:c1,c2"
		}, 0o022, "SELinux"},
		{"no root", func(f *fixture, c *Container, o *Options) { c.Root = "" }, 0o022, "no root"},
		{"rootfs not a directory", func(f *fixture, c *Container, o *Options) { c.Root = "missing" }, 0o022, "not a directory"},
		{"volume over the library folder", func(f *fixture, c *Container, o *Options) {
			f.spec.Mounts = append(f.spec.Mounts, rspec.Mount{Destination: "/usr/lib", Type: "bind", Source: "/tmp"})
		}, 0o022, "covers"},
		{"mount over /etc", func(f *fixture, c *Container, o *Options) {
			f.spec.Mounts = append(f.spec.Mounts, rspec.Mount{Destination: "/etc", Type: "bind", Source: "/tmp"})
		}, 0o022, "covers"},
		{"mount on a link the hook makes", func(f *fixture, c *Container, o *Options) {
			f.spec.Mounts = append(f.spec.Mounts, rspec.Mount{Destination: libDir + "/libcuda.so", Type: "bind", Source: "/dev/null"})
		}, 0o022, "which the hook writes"},
		{"folder mounted inside the library folder, over a link's folder", func(f *fixture, c *Container, o *Options) {
			h := &f.spec.Hooks.CreateContainer[1]
			h.Args = append(h.Args[:2], append([]string{"create-symlinks", "--link", "x::" + libDir + "/sub/libx.so", "--and"}, h.Args[2:]...)...)
			f.spec.Mounts = append(f.spec.Mounts, rspec.Mount{Destination: libDir + "/sub", Type: "bind", Source: "/tmp"})
		}, 0o022, "covers"},
		{"library mount onto an image symlink", func(f *fixture, c *Container, o *Options) {
			os.Symlink("elsewhere.so", filepath.Join(f.rootfs, libDir, "libcuda.so.580.95.05"))
		}, 0o022, "symlink of the image"},
		{"/dev not a tmpfs", func(f *fixture, c *Container, o *Options) { f.spec.Mounts[1].Type = "bind" }, 0o022, "fresh tmpfs"},
		{"restrictive umask", func(f *fixture, c *Container, o *Options) {}, 0o077, "runc makes it 700"},
		{"no link folder", func(f *fixture, c *Container, o *Options) { o.LinkDir = "" }, 0o022, "no folder for shared links"},
		{"unknown step", func(f *fixture, c *Container, o *Options) {
			h := &f.spec.Hooks.CreateContainer[1]
			h.Args = append(h.Args, "--and", "chmod", "--mode=755", "--path", "/dev/dri")
		}, 0o022, "not in the form"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			ct, o := f.container(), f.options()
			c.edit(f, &ct, &o)
			before := slices.Clone(f.spec.Hooks.CreateContainer)
			old := unix.Umask(c.umask)
			ok, why := Fold(f.spec, ct, o)
			unix.Umask(old)
			if ok || !strings.Contains(why, c.why) {
				t.Fatalf("Fold = %v, %q; want the hook kept: %q", ok, why, c.why)
			}
			if len(f.spec.Hooks.CreateContainer) != len(before) {
				t.Errorf("hooks changed")
			}
			if c.name != "no link folder" {
				if _, err := os.Lstat(filepath.Join(f.rootfs, "etc/ld.so.cache")); err == nil {
					t.Errorf("the rootfs was written")
				}
			}
		})
	}
}

// TestFoldMergedUsr: an image whose /lib is a link to usr/lib, with the
// spec naming the library folder through it, is folded: the files runc
// will mount are found where runc puts them.
func TestFoldMergedUsr(t *testing.T) {
	f := newFixture(t)
	os.MkdirAll(filepath.Join(f.rootfs, "lib"), 0o755)
	os.Remove(filepath.Join(f.rootfs, "lib"))
	os.Symlink("usr/lib", filepath.Join(f.rootfs, "lib"))
	for i := range f.spec.Mounts {
		f.spec.Mounts[i].Destination = strings.Replace(f.spec.Mounts[i].Destination, "/usr/lib/", "/lib/", 1)
	}
	if ok, why := Fold(f.spec, f.container(), f.options()); !ok {
		t.Fatalf("not folded: %s", why)
	}
	data, _ := os.ReadFile(filepath.Join(f.rootfs, "etc/ld.so.cache"))
	if !bytes.Contains(data, []byte("libcuda.so.1")) {
		t.Errorf("the cache lacks libcuda.so.1 mounted through /lib")
	}
}

// TestFoldHostileRootfs: an image whose library folder and /etc are links
// out of the rootfs gets everything written inside its own rootfs, and
// nothing outside.
func TestFoldHostileRootfs(t *testing.T) {
	f := newFixture(t)
	outside := t.TempDir()
	os.RemoveAll(filepath.Join(f.rootfs, "usr/lib/x86_64-linux-gnu"))
	os.Symlink(outside, filepath.Join(f.rootfs, "usr/lib/x86_64-linux-gnu"))
	os.RemoveAll(filepath.Join(f.rootfs, "etc"))
	os.Symlink(outside, filepath.Join(f.rootfs, "etc"))
	Fold(f.spec, f.container(), f.options())
	if entries, _ := os.ReadDir(outside); len(entries) > 0 {
		t.Errorf("Fold wrote outside the rootfs: %v", entries)
	}
}

// TestRead takes the members Fold needs from a real config.json.
func TestRead(t *testing.T) {
	doc, err := oci.ParseDocument([]byte(`{"ociVersion":"1.2.0","root":{"path":"rootfs","readonly":true},
		"linux":{"mountLabel":"lbl","namespaces":[{"type":"pid"},{"type":"user"},{"type":"mount","path":"/proc/1/ns/mnt"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Read(doc, "/b")
	if err != nil {
		t.Fatal(err)
	}
	want := Container{Bundle: "/b", Root: "rootfs", UserNS: true, JoinsMountNS: true, MountLabel: "lbl"}
	if c != want {
		t.Errorf("Read = %+v, want %+v", c, want)
	}
	doc, _ = oci.ParseDocument([]byte(`{"ociVersion":"1.2.0","root":{"path":"a","Path":"b"}}`))
	if _, err := Read(doc, "/b"); err == nil {
		t.Errorf("a root given path twice was read")
	}
}

// BenchmarkFold is what doing the hook's work costs nvbind-runtime for one
// GPU's links, ten driver libraries and the ld cache, on a fresh rootfs
// each time (the copy is not timed).
func BenchmarkFold(b *testing.B) {
	f := newFixture(b)
	spec, _ := json.Marshal(f.spec)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.RemoveAll(f.rootfs)
		for _, d := range []string{"etc", "bin", "dev", "proc", "usr/lib/x86_64-linux-gnu"} {
			os.MkdirAll(filepath.Join(f.rootfs, d), 0o755)
		}
		var s rspec.Spec
		json.Unmarshal(spec, &s)
		b.StartTimer()
		if ok, why := Fold(&s, f.container(), f.options()); !ok {
			b.Fatal(why)
		}
	}
}
