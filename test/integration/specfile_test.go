package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// saveWithExtensions writes b's spec with keys runtime-spec does not have
// inside the objects nvbind edits.
func saveWithExtensions(t *testing.T, b *Bundle) {
	t.Helper()
	data, _ := json.Marshal(b.Spec)
	var m map[string]any
	json.Unmarshal(data, &m)
	proc := m["process"].(map[string]any)
	proc["user"].(map[string]any)["x-user-future"] = "kept"
	mounts := m["mounts"].([]any)
	mounts[0].(map[string]any)["x-mount-ext"] = true
	m["hooks"] = map[string]any{
		"x-future-hooks": []any{map[string]any{"path": "/bin/true"}},
		"poststop":       []any{map[string]any{"path": "/bin/true", "x-hook-ext": 1}},
	}
	linux := m["linux"].(map[string]any)
	linux["devices"] = []any{map[string]any{"path": "/dev/zero0", "type": "c", "major": 1, "minor": 5, "x-dev-ext": "kept"}}
	out, _ := json.MarshalIndent(m, "", "\t")
	if err := os.WriteFile(b.ConfigPath(), out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConfigKeepsUnknownKeys: keys newer than runtime-spec inside the
// members nvbind edits (a mount, process.user, hooks and a hook,
// linux.devices) survive a GPU create, on real runc.
func TestConfigKeepsUnknownKeys(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	b := gpu0Bundle(t)
	saveWithExtensions(t, b)
	if res := runContainer(t, s, b); res.Code != 0 || len(gpuNodes(res.Stdout)) != 1 {
		t.Fatalf("container: %s", res)
	}
	got := string(b.ReadConfig(t))
	for _, key := range []string{`"x-user-future":"kept"`, `"x-mount-ext":true`, `"x-future-hooks":`, `"x-hook-ext":1`, `"x-dev-ext":"kept"`} {
		if !strings.Contains(strings.ReplaceAll(got, ": ", ":"), key) {
			t.Errorf("config.json lost %s:\n%s", key, got)
		}
	}
	if !strings.Contains(got, "/dev/nvidia0") {
		t.Errorf("no GPU in the written config.json")
	}
}

// TestConfigKeepsOwnerAndXattrs: the rewritten config.json keeps its owner,
// group, mode and extended attributes (the SELinux label where the kernel
// takes one, and a user.* attribute).
func TestConfigKeepsOwnerAndXattrs(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	b := gpu0Bundle(t)
	p := b.ConfigPath()
	if err := os.Chown(p, 1000, 1001); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o640)
	attrs := map[string]string{"user.nvbind-test": "kept"}
	const label = "system_u:object_r:container_file_t:s0"
	if err := unix.Setxattr(p, "security.selinux", []byte(label), 0); err == nil {
		attrs["security.selinux"] = label
	} else {
		t.Logf("no security.selinux here (%v): checking user.* only", err)
	}
	if err := unix.Setxattr(p, "user.nvbind-test", []byte("kept"), 0); err != nil {
		t.Fatalf("setxattr: %v", err)
	}
	if res := runContainer(t, s, b); res.Code != 0 || len(gpuNodes(res.Stdout)) != 1 {
		t.Fatalf("container: %s", res)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 1000 || st.Gid != 1001 || fi.Mode().Perm() != 0o640 {
		t.Errorf("config.json is now %d:%d %v, want 1000:1001 -rw-r-----", st.Uid, st.Gid, fi.Mode())
	}
	for name, want := range attrs {
		buf := make([]byte, 256)
		n, err := unix.Getxattr(p, name, buf)
		if err != nil || string(buf[:n]) != want {
			t.Errorf("xattr %s = %q (%v), want %q", name, buf[:max(n, 0)], err, want)
		}
	}
	if !strings.Contains(string(b.ReadConfig(t)), "/dev/nvidia0") {
		t.Errorf("config.json not edited")
	}
}

// TestConfigSymlinkEditedThroughTarget: a config.json that is a symlink
// stays one; the file it points at gets the GPU.
func TestConfigSymlinkEditedThroughTarget(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	b := gpu0Bundle(t)
	real := filepath.Join(t.TempDir(), "real.json")
	if err := os.Rename(b.ConfigPath(), real); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, b.ConfigPath()); err != nil {
		t.Fatal(err)
	}
	if res := runContainer(t, s, b); res.Code != 0 || len(gpuNodes(res.Stdout)) != 1 {
		t.Fatalf("container: %s", res)
	}
	if fi, err := os.Lstat(b.ConfigPath()); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("config.json is no longer a symlink: %v %v", fi.Mode(), err)
	}
	data, _ := os.ReadFile(real)
	if !strings.Contains(string(data), "/dev/nvidia0") {
		t.Errorf("the symlink's target was not edited")
	}
}

// TestConfigOversize: a config.json over nvbind's 16 MiB reading limit runs
// as runc would take it when it asks for no GPU; one that asks for a GPU is
// refused with one line.
func TestConfigOversize(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	b := newBundle(t, "true")
	b.Spec.Annotations = map[string]string{"big": strings.Repeat("x", 17<<20)}
	b.Save(t)
	if res := runContainer(t, s, b); res.Code != 0 {
		t.Fatalf("no-GPU container with a large spec: %s", res)
	}
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0")
	b.Save(t)
	res := runContainer(t, s, b)
	if res.Code == 0 || strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 || !strings.Contains(res.Stderr, "larger than") {
		t.Fatalf("GPU container with an oversize spec: %s", res)
	}
}
