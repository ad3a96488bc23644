package hook

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/ldcache"
	"golang.org/x/sys/unix"
)

// --- helpers for building hostile root filesystems ---

func put(t *testing.T, root, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

func link(t *testing.T, target, root, rel string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func newHook(t *testing.T, rootfs string) (*Hook, *bytes.Buffer) {
	t.Helper()
	r, err := OpenRoot(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	var warn bytes.Buffer
	return &Hook{Root: r, Warn: &warn}, &warn
}

// assertEmpty fails when a host directory that must stay untouched is not
// empty.
func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("host directory %s was written: %v", dir, names)
	}
}

// cacheKeys reads the rootfs's ld.so.cache as key => value lines.
func cacheKeys(t *testing.T, rootfs string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(rootfs, "etc/ld.so.cache"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ldcache.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		k := e.Key
		if e.Flags != 0x0303 { // a 32-bit loader's entry
			k += "/32"
		}
		if _, dup := m[k]; dup {
			t.Errorf("cache lists %s twice", k)
		}
		m[k] = e.Value
	}
	return m
}

const libdir = "/usr/lib/x86_64-linux-gnu"

func TestUpdateLDCache(t *testing.T) {
	rootfs := t.TempDir()
	put(t, rootfs, libdir+"/libcuda.so.580.95.05", lib64("libcuda.so.1").bytes())
	put(t, rootfs, libdir+"/libnvidia-ml.so.580.95.05", lib64("libnvidia-ml.so.1").bytes())
	link(t, "libnvidia-ml.so.580.95.05", rootfs, libdir+"/libnvidia-ml.so.1")
	link(t, "libnvidia-ml.so.1", rootfs, libdir+"/libnvidia-ml.so") // the dev link
	put(t, rootfs, libdir+"/libnvidia-gpucomp.so.580.95.05", lib64("libnvidia-gpucomp.so.580.95.05").bytes())
	put(t, rootfs, libdir+"/libnoso.so.3", lib64("").bytes())                            // no SONAME: its file name
	put(t, rootfs, libdir+"/libc.so", []byte("/* GNU ld script */ GROUP ( libc.so.6 )")) // not ELF: skipped
	put(t, rootfs, libdir+"/README", lib64("libreadme.so.1").bytes())                    // not a library name
	put(t, rootfs, "/usr/lib/i386-linux-gnu/libcuda.so.580.95.05",
		testELF{soname: "libcuda.so.1", needed: []string{"libc.so.6"}, machine: elf.EM_386, class: elf.ELFCLASS32}.bytes())
	h, warn := newHook(t, rootfs)

	if err := h.UpdateLDCache([]string{libdir, "/usr/lib/i386-linux-gnu", "/opt/missing"}); err != nil {
		t.Fatal(err)
	}
	got := cacheKeys(t, rootfs)
	want := map[string]string{
		"libcuda.so.1":                   libdir + "/libcuda.so.1",
		"libcuda.so.1/32":                "/usr/lib/i386-linux-gnu/libcuda.so.1",
		"libnvidia-ml.so.1":              libdir + "/libnvidia-ml.so.1",
		"libnvidia-ml.so":                libdir + "/libnvidia-ml.so",
		"libnvidia-gpucomp.so.580.95.05": libdir + "/libnvidia-gpucomp.so.580.95.05",
		"libnoso.so.3":                   libdir + "/libnoso.so.3",
	}
	if !mapsEqual(got, want) {
		t.Errorf("cache:\n got %v\nwant %v", got, want)
	}
	// The SONAME link ldconfig would make.
	if target, err := os.Readlink(filepath.Join(rootfs, libdir, "libcuda.so.1")); err != nil || target != "libcuda.so.580.95.05" {
		t.Errorf("libcuda.so.1 -> %q (%v), want libcuda.so.580.95.05", target, err)
	}
	if !strings.Contains(warn.String(), "skipping folder /opt/missing") {
		t.Errorf("no warning for the missing folder: %q", warn.String())
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "etc/ld.so.cache")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("cache mode: %v %v", fi, err)
	}

	// Idempotent: a second run leaves the same file in place.
	before, _ := os.Stat(filepath.Join(rootfs, "etc/ld.so.cache"))
	if err := h.UpdateLDCache([]string{libdir, "/usr/lib/i386-linux-gnu"}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(filepath.Join(rootfs, "etc/ld.so.cache"))
	if !os.SameFile(before, after) {
		t.Errorf("second run rewrote an unchanged cache")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestUpdateLDCacheMergesImageCache: the image's own entries stay, an
// image entry for an injected SONAME is replaced, not duplicated.
func TestUpdateLDCacheMergesImageCache(t *testing.T) {
	rootfs := t.TempDir()
	image := ldcache.Encode([]ldcache.Entry{
		{Key: "libc.so.6", Value: "/lib/x86_64-linux-gnu/libc.so.6", Flags: 0x0303},
		{Key: "libcuda.so.1", Value: "/usr/local/cuda/compat/libcuda.so.1", Flags: 0x0303},
		{Key: "libcuda.so.1", Value: "/usr/local/cuda/compat/glibc-hwcaps/x86-64-v3/libcuda.so.1", Flags: 0x0303, HWCap: ldcache.HWCapExtension, Hwcaps: "x86-64-v3"},
		{Key: "libcuda.so.1", Value: "/usr/lib32/libcuda.so.1", Flags: 0x0003},
	}, cacheGenerator)
	put(t, rootfs, "/etc/ld.so.cache", image)
	put(t, rootfs, libdir+"/libcuda.so.580.95.05", lib64("libcuda.so.1").bytes())
	h, _ := newHook(t, rootfs)
	if err := h.UpdateLDCache([]string{libdir}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"libc.so.6":       "/lib/x86_64-linux-gnu/libc.so.6",
		"libcuda.so.1":    libdir + "/libcuda.so.1",
		"libcuda.so.1/32": "/usr/lib32/libcuda.so.1", // another loader's entry stays
	}
	if got := cacheKeys(t, rootfs); !mapsEqual(got, want) {
		t.Errorf("cache:\n got %v\nwant %v", got, want)
	}
}

func TestUpdateLDCacheIgnoresBrokenImageCache(t *testing.T) {
	rootfs := t.TempDir()
	put(t, rootfs, "/etc/ld.so.cache", []byte("glibc-ld.so.cache1.1 but then garbage"))
	put(t, rootfs, libdir+"/libcuda.so.1", lib64("libcuda.so.1").bytes())
	h, warn := newHook(t, rootfs)
	if err := h.UpdateLDCache([]string{libdir}); err != nil {
		t.Fatal(err)
	}
	if got := cacheKeys(t, rootfs); got["libcuda.so.1"] != libdir+"/libcuda.so.1" || len(got) != 1 {
		t.Errorf("cache %v", got)
	}
	if !strings.Contains(warn.String(), "ignoring the image's /etc/ld.so.cache") {
		t.Errorf("no warning about the broken cache: %q", warn.String())
	}
}

// TestUpdateLDCacheWritesNothingOnError: a folder that cannot be read
// fails the hook before any link or cache is written.
func TestUpdateLDCacheWritesNothingOnError(t *testing.T) {
	rootfs := t.TempDir()
	put(t, rootfs, libdir+"/libcuda.so.580.95.05", lib64("libcuda.so.1").bytes())
	link(t, "/opt/loop", rootfs, "opt/loop") // resolves to itself: ELOOP
	before := snapshot(t, rootfs)
	h, _ := newHook(t, rootfs)
	err := h.UpdateLDCache([]string{libdir, "/opt/loop"})
	if err == nil || !strings.Contains(err.Error(), "folder /opt/loop") {
		t.Fatalf("UpdateLDCache = %v, want an error naming /opt/loop", err)
	}
	if after := snapshot(t, rootfs); after != before {
		t.Errorf("a failed update changed the rootfs:\n%s\nwas:\n%s", after, before)
	}
}

// TestUpdateLDCacheHostileRootfs: symlinks in the image that point out of
// the rootfs are resolved inside it; host files stay untouched.
func TestUpdateLDCacheHostileRootfs(t *testing.T) {
	tests := []struct {
		name string
		// setup makes the rootfs hostile; hostEtc is an empty host dir,
		// hostLib a host dir holding a library and a cache file.
		setup func(t *testing.T, rootfs, hostEtc, hostLib string)
		// inRoot is where the cache must land instead (rootfs-relative,
		// HOSTETC standing for hostEtc's path); "" when the hook must fail.
		inRoot string
		// proc mounts a real procfs at the rootfs's /proc, as a container
		// has when its createContainer hooks run (needs root).
		proc bool
	}{
		{name: "etc is an absolute symlink to a host dir", setup: func(t *testing.T, rootfs, hostEtc, hostLib string) {
			link(t, hostEtc, rootfs, "etc")
			os.MkdirAll(filepath.Join(rootfs, hostEtc), 0o755)
		}, inRoot: "HOSTETC/ld.so.cache"},
		{name: "etc is a .. chain", setup: func(t *testing.T, rootfs, hostEtc, hostLib string) {
			link(t, strings.Repeat("../", 40)+strings.TrimPrefix(hostEtc, "/"), rootfs, "etc")
			os.MkdirAll(filepath.Join(rootfs, hostEtc), 0o755)
		}, inRoot: "HOSTETC/ld.so.cache"},
		{name: "etc is a dangling symlink to a host dir", setup: func(t *testing.T, rootfs, hostEtc, hostLib string) {
			link(t, hostEtc, rootfs, "etc")
		}},
		{name: "ld.so.cache is a symlink to a host file", setup: func(t *testing.T, rootfs, hostEtc, hostLib string) {
			link(t, hostLib+"/ld.so.cache", rootfs, "etc/ld.so.cache")
		}, inRoot: "etc/ld.so.cache"},
		{name: "ld.so.cache is a magic link", proc: true, setup: func(t *testing.T, rootfs, hostEtc, hostLib string) {
			link(t, "/proc/self/root"+hostLib+"/ld.so.cache", rootfs, "etc/ld.so.cache")
		}, inRoot: "etc/ld.so.cache"},
		{name: "etc is a magic link", proc: true, setup: func(t *testing.T, rootfs, hostEtc, hostLib string) {
			link(t, "/proc/self/root"+hostEtc, rootfs, "etc")
		}},
		{name: "lib dir is a symlink to a host dir", setup: func(t *testing.T, rootfs, hostEtc, hostLib string) {
			os.RemoveAll(filepath.Join(rootfs, libdir))
			link(t, hostLib, rootfs, libdir)
		}, inRoot: "etc/ld.so.cache"},
		{name: "lib dir is a magic link to a host dir", proc: true, setup: func(t *testing.T, rootfs, hostEtc, hostLib string) {
			os.RemoveAll(filepath.Join(rootfs, libdir))
			link(t, "/proc/1/root"+hostLib, rootfs, libdir)
		}},
		{name: "library links to a host library", setup: func(t *testing.T, rootfs, hostEtc, hostLib string) {
			link(t, hostLib+"/libhost.so.1", rootfs, libdir+"/libhost.so.1")
			link(t, "../../../../../../../../"+hostLib+"/libhost.so.1", rootfs, libdir+"/libhost2.so.1")
		}, inRoot: "etc/ld.so.cache"},
		{name: "SONAME climbs out", setup: func(t *testing.T, rootfs, hostEtc, hostLib string) {
			put(t, rootfs, libdir+"/libevil.so.9", lib64("../../../../../../.."+hostLib+"/pwned").bytes())
			put(t, rootfs, libdir+"/libevil2.so.9", lib64(hostLib+"/pwned").bytes())
		}, inRoot: "etc/ld.so.cache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rootfs, hostEtc, hostLib := t.TempDir(), t.TempDir(), t.TempDir()
			put(t, "/", hostLib+"/libhost.so.1", lib64("libhost.so.1").bytes())
			put(t, "/", hostLib+"/ld.so.cache", []byte("host cache, not to be touched"))
			hostBefore := snapshot(t, hostLib)
			put(t, rootfs, libdir+"/libcuda.so.580.95.05", lib64("libcuda.so.1").bytes())
			if tt.proc {
				mountProc(t, rootfs)
			}
			tt.setup(t, rootfs, hostEtc, hostLib)
			h, _ := newHook(t, rootfs)
			err := h.UpdateLDCache([]string{libdir})
			assertEmpty(t, hostEtc)
			if after := snapshot(t, hostLib); after != hostBefore {
				t.Errorf("host dir changed:\n%s\nwas:\n%s", after, hostBefore)
			}
			if tt.inRoot == "" {
				if err == nil {
					t.Fatal("UpdateLDCache succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			inRoot := filepath.Join(rootfs, strings.Replace(tt.inRoot, "HOSTETC", hostEtc, 1))
			data, err := os.ReadFile(inRoot)
			if err != nil {
				t.Fatalf("cache not written inside the rootfs at %s: %v", inRoot, err)
			}
			entries, err := ldcache.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.Contains(e.Key, "host") || strings.Contains(e.Key, "pwned") {
					t.Errorf("cache lists %s => %s, read from outside the rootfs", e.Key, e.Value)
				}
			}
		})
	}
}

// snapshot describes a host directory tree: names, link targets, modes
// and contents.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v", strings.TrimPrefix(p, dir), fi.Mode())
		if fi.Mode()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			b.WriteString(" -> " + target)
		} else if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

// mountProc mounts a procfs at rootfs/proc for the test's lifetime.
func mountProc(t *testing.T, rootfs string) {
	t.Helper()
	requireRootUser(t)
	p := filepath.Join(rootfs, "proc")
	os.MkdirAll(p, 0o555)
	if err := unix.Mount("proc", p, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		t.Fatalf("mount proc: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(p, unix.MNT_DETACH) })
}

// TestUpdateLDCacheMatchesLdconfig: for the same folders, the cache lists
// what glibc's ldconfig lists, in the same order.
func TestUpdateLDCacheMatchesLdconfig(t *testing.T) {
	requireRootUser(t)
	ldconfig := requireProgram(t, "ldconfig")
	folders := []string{libdir, "/usr/lib/i386-linux-gnu", "/opt/a/lib", "/opt/b/lib"}
	build := func(rootfs string) {
		for _, n := range []struct{ file, soname string }{
			{"libcuda.so.580.95.05", "libcuda.so.1"},
			{"libnvidia-ml.so.580.95.05", "libnvidia-ml.so.1"},
			{"libnvidia-gpucomp.so.580.95.05", "libnvidia-gpucomp.so.580.95.05"},
			{"libfoo.so.2", "libfoo.so.2"},
			{"libfoo.so.10", "libfoo.so.10"},
			{"libfoo2.so.1", "libfoo2.so.1"},
			{"libfoo-2.so.1", "libfoo-2.so.1"},
			{"libFoo.so.1", "libFoo.so.1"},
			{"libnoso.so.7", ""},
		} {
			put(t, rootfs, libdir+"/"+n.file, lib64(n.soname).bytes())
			if n.soname != "" && n.soname != n.file {
				link(t, n.file, rootfs, libdir+"/"+n.soname)
			}
		}
		link(t, "libcuda.so.1", rootfs, libdir+"/libcuda.so")
		put(t, rootfs, "/usr/lib/i386-linux-gnu/libcuda.so.1",
			testELF{soname: "libcuda.so.1", needed: []string{"libc.so.6"}, machine: elf.EM_386, class: elf.ELFCLASS32}.bytes())
		put(t, rootfs, "/opt/a/lib/libdup.so.1", lib64("libdup.so.1").bytes())
		put(t, rootfs, "/opt/b/lib/libdup.so.1", lib64("libdup.so.1").bytes())
		put(t, rootfs, "/etc/ld.so.conf", []byte(strings.Join(folders, "\n")+"\n"))
	}
	ref, ours := t.TempDir(), t.TempDir()
	build(ref)
	build(ours)
	if out, err := exec.Command(ldconfig, "-X", "-r", ref).CombinedOutput(); err != nil {
		t.Fatalf("ldconfig -r: %v\n%s", err, out)
	}
	h, _ := newHook(t, ours)
	if err := h.UpdateLDCache(folders); err != nil {
		t.Fatal(err)
	}
	list := func(rootfs string) string {
		out, err := exec.Command(ldconfig, "-p", "-C", filepath.Join(rootfs, "etc/ld.so.cache")).CombinedOutput()
		if err != nil {
			t.Fatalf("ldconfig -p: %v\n%s", err, out)
		}
		return listing(string(out))
	}
	want, got := list(ref), list(ours)
	if got != want {
		t.Errorf("ldconfig -p of our cache:\n%s\nof glibc ldconfig's:\n%s", got, want)
	}
	if !strings.Contains(got, "libcuda.so.1 (libc6,x86-64) => "+libdir+"/libcuda.so.1") {
		t.Errorf("libcuda.so.1 missing:\n%s", got)
	}
}

// TestUpdateLDCacheLoaderUsesIt runs a real program in a chroot whose
// library sits outside the loader's default path: it only starts when the
// loader finds the library through the cache the hook wrote.
func TestUpdateLDCacheLoaderUsesIt(t *testing.T) {
	requireRootUser(t)
	gcc := requireProgram(t, "gcc")
	rootfs := t.TempDir()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "foo.c"), []byte("int foo(void) { return 42; }\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.c"), []byte("#include <stdio.h>\nint foo(void);\nint main(void) { printf(\"foo=%d\\n\", foo()); return 0; }\n"), 0o644)
	vendor := "/opt/vendor/lib"
	run := func(args ...string) {
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %v: %v\n%s", args, err, out)
		}
	}
	libPath := filepath.Join(rootfs, vendor, "libfoo.so.1.0")
	os.MkdirAll(filepath.Dir(libPath), 0o755)
	run("-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "-o", libPath, filepath.Join(src, "foo.c"))
	os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755)
	run("-o", filepath.Join(rootfs, "bin/prog"), filepath.Join(src, "main.c"), libPath)
	// The host's C library and loader, where its programs look for them.
	for _, f := range hostRuntime(t, filepath.Join(rootfs, "bin/prog")) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		put(t, rootfs, f, data)
	}
	chrootRun := func() (string, error) {
		cmd := exec.Command("/bin/prog")
		cmd.SysProcAttr = &unix.SysProcAttr{Chroot: rootfs}
		cmd.Env = []string{}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := chrootRun(); err == nil {
		t.Fatalf("program ran before the cache was written (test is broken): %s", out)
	}
	h, _ := newHook(t, rootfs)
	if err := h.UpdateLDCache([]string{vendor}); err != nil {
		t.Fatal(err)
	}
	out, err := chrootRun()
	if err != nil || out != "foo=42\n" {
		t.Fatalf("program in the rootfs: %v: %q", err, out)
	}
}

// hostRuntime lists the shared libraries and loader a host program needs.
func hostRuntime(t *testing.T, prog string) []string {
	t.Helper()
	f, err := elf.Open(prog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var files []string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			p.ReadAt(b, 0)
			files = append(files, strings.TrimRight(string(b), "\x00"))
		}
	}
	out, err := exec.Command("ldd", prog).Output()
	if err != nil {
		t.Fatalf("ldd: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if _, after, ok := strings.Cut(l, "=> /"); ok && !strings.Contains(l, "libfoo") {
			files = append(files, "/"+strings.Fields(after)[0])
		}
	}
	return files
}

// requireRootUser skips a test that needs root (chroot, ldconfig -r),
// except under CI=true where that is a failure.
func requireRootUser(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("root is required (CI=true)")
	}
	t.Skip("needs root")
}

// BenchmarkUpdateLDCache: one container start's update-ldcache with the
// driver's ~40 libraries over an image cache of 500 entries, the cache
// already current (the common case for a restarted container).
func BenchmarkUpdateLDCache(b *testing.B) {
	rootfs := b.TempDir()
	var image []ldcache.Entry
	for i := range 500 {
		image = append(image, ldcache.Entry{Key: fmt.Sprintf("libimage%d.so.1", i), Value: fmt.Sprintf("/usr/lib/libimage%d.so.1", i), Flags: 0x0303})
	}
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "etc/ld.so.cache"), ldcache.Encode(image, cacheGenerator), 0o644)
	dir := filepath.Join(rootfs, libdir)
	os.MkdirAll(dir, 0o755)
	for i := range 40 {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("libnvidia-%d.so.580.95.05", i)), lib64(fmt.Sprintf("libnvidia-%d.so.1", i)).bytes(), 0o755)
	}
	r, err := OpenRoot(rootfs)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	h := &Hook{Root: r}
	b.ResetTimer()
	for range b.N {
		if err := h.UpdateLDCache([]string{libdir}); err != nil {
			b.Fatal(err)
		}
	}
}
