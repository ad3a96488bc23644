package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Attacks on the injection path from a hostile image or request. Each
// asserts what the user sees (exit code, message), that the host is
// untouched, and that no container is left behind.

// TestAttackSymlinkedLibDirAndEtc: the image's library dir and /etc are
// symlinks to host directories. Nothing may be written there: paths are
// resolved inside the rootfs.
func TestAttackSymlinkedLibDirAndEtc(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 1)

	t.Run("lib dir links to a host dir", func(t *testing.T) {
		hostLib := t.TempDir()
		b := newBundle(t, "sh", "-c", "ldconfig -p")
		withLdconfig(t, b)
		os.RemoveAll(filepath.Join(b.Rootfs(), driverLibDir))
		os.MkdirAll(filepath.Dir(filepath.Join(b.Rootfs(), driverLibDir)), 0o755)
		os.Symlink(hostLib, filepath.Join(b.Rootfs(), driverLibDir))
		b.SetEnv("NVIDIA_VISIBLE_DEVICES=0")
		b.Save(t)
		res := runContainer(t, s, b)
		assertEmptyDir(t, hostLib)
		if res.Code != 0 {
			t.Fatalf("container failed: %s", res)
		}
		// The link resolves inside the rootfs, where runc mounted the
		// libraries and the hook found them.
		if !strings.Contains(res.Stdout, "libcuda.so.1 (libc6,x86-64) => "+driverLibDir+"/libcuda.so.1") {
			t.Errorf("ldconfig -p in the container:\n%s", res.Stdout)
		}
		if _, err := os.Lstat(filepath.Join(b.Rootfs(), hostLib, "libcuda.so.1")); err != nil {
			t.Errorf("SONAME link not made inside the rootfs: %v", err)
		}
		noContainers(t, s)
	})

	for name, target := range map[string]func(hostEtc string) string{
		"etc links to a host dir":   func(h string) string { return h },
		"etc is a chain of ..":      func(h string) string { return strings.Repeat("../", 20) + strings.TrimPrefix(h, "/") },
		"etc is a /proc magic link": func(h string) string { return "/proc/self/root" + h },
	} {
		t.Run(name, func(t *testing.T) {
			hostEtc := t.TempDir()
			b := newBundle(t, "true")
			os.RemoveAll(filepath.Join(b.Rootfs(), "etc"))
			os.Symlink(target(hostEtc), filepath.Join(b.Rootfs(), "etc"))
			b.SetEnv("NVIDIA_VISIBLE_DEVICES=0")
			b.Save(t)
			res := runContainer(t, s, b)
			assertEmptyDir(t, hostEtc)
			// /etc resolves to a directory the image does not have: the
			// hook refuses rather than write anywhere else, and the
			// container does not start.
			if res.Code == 0 {
				t.Fatalf("container started: %s", res)
			}
			logs := res.Stderr + readFile(t, filepath.Join(b.Dir, "runc.log"))
			t.Logf("exit %d: %s", res.Code, logs)
			if !strings.Contains(logs, "nvbind-hook: update-ldcache: write /etc/ld.so.cache: ") {
				t.Errorf("the failure does not name the hook and /etc:\n%s", logs)
			}
			noContainers(t, s)
		})
	}
}

// TestAttackLDPreload: the image sets LD_PRELOAD (and friends) to a
// library that would leave a marker on the host when loaded. runc starts
// createContainer hooks with the image's environment; nothing of it may
// load into the hook or anything the hook runs.
func TestAttackLDPreload(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 1)
	marker := filepath.Join(t.TempDir(), "pwned")
	b := newBundle(t, "sh", "-c", "ldconfig -p")
	withLdconfig(t, b)
	evil := filepath.Join(b.Rootfs(), "evil.so")
	gccLibrary(t, evil, "evil.so", `#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void pwn(void) {
	int fd = open("`+marker+`", O_CREAT | O_WRONLY, 0644);
	if (fd >= 0) close(fd);
}
`)
	// Control: the library does leave the marker when a host program loads it.
	cmd := exec.Command("/bin/true")
	cmd.Env = []string{"LD_PRELOAD=" + evil}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("control run: %v: %s", err, out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("control: the preload library left no marker (test is broken): %v", err)
	}
	os.Remove(marker)

	// createContainer hooks run with the rootfs as working directory
	// (CVE-2025-23266 used /proc/self/cwd); the host path works too.
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0",
		"LD_PRELOAD=/proc/self/cwd/evil.so "+evil,
		"LD_AUDIT="+evil,
		"LD_LIBRARY_PATH=/proc/self/cwd:"+b.Rootfs())
	b.Save(t)
	res := runContainer(t, s, b)
	if res.Code != 0 {
		t.Fatalf("container failed: %s", res)
	}
	if !strings.Contains(res.Stdout, "libcuda.so.1 (libc6,x86-64)") {
		t.Fatalf("the hooks did not run (no libcuda.so.1 in the cache):\n%s", res.Stdout)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the image's LD_PRELOAD library ran on the host: %s exists", marker)
	}
	noContainers(t, s)
}

// TestAttackBadRequests: hostile or broken requests are refused before
// anything is created: exit 1, a message naming the bad value, config.json
// byte for byte unchanged, no container left.
func TestAttackBadRequests(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 1)
	long := strings.Repeat("0,", 3000) + "0"
	assertRequestsRefused(t, s, []badRequest{
		{"path-like device", []string{"NVIDIA_VISIBLE_DEVICES=../../../dev/sda"}, nil, "",
			[]string{"nvbind-runtime:", `"../../../dev/sda"`}},
		{"absolute path device", []string{"NVIDIA_VISIBLE_DEVICES=/dev/sda"}, nil, "",
			[]string{"nvbind-runtime:", `"/dev/sda"`}},
		{"path-like UUID", []string{"NVIDIA_VISIBLE_DEVICES=GPU-../../etc/passwd"}, nil, "",
			[]string{"nvbind-runtime:", "GPU-../../etc/passwd"}},
		{"path-like CDI annotation", nil, map[string]string{"cdi.k8s.io/x": "nvidia.com/gpu=../../../etc"}, "",
			[]string{"nvbind-runtime:", "nvidia.com/gpu=../../../etc"}},
		{"oversize device list", []string{"NVIDIA_VISIBLE_DEVICES=" + long}, nil, "",
			[]string{"nvbind-runtime:", "NVIDIA_VISIBLE_DEVICES", "more than"}},
		{"oversize device name", []string{"NVIDIA_VISIBLE_DEVICES=GPU-" + strings.Repeat("a", 500)}, nil, "",
			[]string{"nvbind-runtime:", "NVIDIA_VISIBLE_DEVICES", "longer than"}},
		{"unknown CDI device", nil, map[string]string{"cdi.k8s.io/x": "nvidia.com/gpu=42"}, "",
			[]string{"nvbind-runtime:", "nvidia.com/gpu=42", s.SpecDir}},
		{"unknown CDI vendor", nil, map[string]string{"cdi.k8s.io/x": "evil.example.com/disk=sda"}, "",
			[]string{"nvbind-runtime:", "evil.example.com/disk=sda"}},
		{"truncated config.json", nil, nil, `{"ociVersion":"1.2.0","process":{"env":["NVIDIA_VISIBLE_DEVICES=0"`,
			[]string{"nvbind-runtime:", "invalid config.json"}},
	})
}

// badRequest is a create that nvbind-runtime must refuse.
type badRequest struct {
	name        string
	env         []string
	annotations map[string]string
	raw         string   // replaces config.json when set
	want        []string // what the error line must name
}

// assertRequestsRefused runs each request as a container of its own and
// checks that it is refused (assertRefused).
func assertRequestsRefused(t *testing.T, s *SimRoot, tests []badRequest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBundle(t, "true")
			b.SetEnv(tt.env...)
			b.Spec.Annotations = tt.annotations
			b.Save(t)
			if tt.raw != "" {
				os.WriteFile(b.ConfigPath(), []byte(tt.raw), 0o644)
			}
			before := b.ReadConfig(t)
			assertRefused(t, s, b, before, runContainer(t, s, b), tt.want...)
		})
	}
}

// assertRefused checks what a refused create must look like: exit 1, one
// bounded "nvbind-runtime:" stderr line naming what was wrong, nothing on
// stdout, a json error line in runc's --log (containerd's shim reports the
// last one), config.json byte for byte as before, no container left behind.
func assertRefused(t *testing.T, s *SimRoot, b *Bundle, before []byte, res Result, want ...string) {
	t.Helper()
	if res.Code != 1 {
		t.Errorf("exit %d, want 1: %s", res.Code, res)
	}
	msg := strings.TrimSpace(res.Stderr)
	t.Logf("exit %d: %s", res.Code, msg)
	if strings.Contains(msg, "\n") || len(msg) > 1024 || !strings.HasPrefix(msg, "nvbind-runtime: ") {
		t.Errorf("stderr is not one short 'nvbind-runtime:' line: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("stderr %q lacks %q", msg, w)
		}
	}
	if strings.Contains(res.Stderr, "panic") || res.Stdout != "" {
		t.Errorf("unexpected output: %s", res)
	}
	if after := b.ReadConfig(t); !bytes.Equal(before, after) {
		t.Errorf("config.json changed")
	}
	noContainers(t, s)
	if log := readFile(t, filepath.Join(b.Dir, "runc.log")); !strings.Contains(log, `"level":"error"`) {
		t.Errorf("runc --log has no json error line: %q", log)
	}
}

// noContainers fails when runc still knows a container under the test's root.
func noContainers(t *testing.T, s *SimRoot) {
	t.Helper()
	if left := containers(t, s.RunRoot); left != "" {
		t.Errorf("containers left behind: %s", left)
	}
}

// assertEmptyDir fails when a host directory that must stay untouched has
// anything in it.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("host dir %s: %v", dir, err)
	}
	if len(ents) > 0 {
		t.Errorf("host dir %s was written: %s", dir, listTree(t, dir))
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, _ := os.ReadFile(p)
	return string(data)
}
