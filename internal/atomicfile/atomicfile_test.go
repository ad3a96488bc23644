package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name     string
		existing *os.FileMode // mode of a file already there, nil for none
		perm     os.FileMode
		wantMode os.FileMode
	}{
		{"new file gets perm", nil, 0o640, 0o640},
		{"existing file keeps its mode", ptr(0o600), 0o644, 0o600},
		{"existing executable keeps its mode", ptr(0o755), 0o600, 0o755},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.json")
			if tt.existing != nil {
				if err := os.WriteFile(path, []byte("old"), *tt.existing); err != nil {
					t.Fatal(err)
				}
				os.Chmod(path, *tt.existing)
			}
			if err := Write(path, []byte("new"), tt.perm); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(path)
			fi, _ := os.Stat(path)
			if string(data) != "new" || fi.Mode().Perm() != tt.wantMode {
				t.Errorf("got %q mode %v, want \"new\" mode %v", data, fi.Mode().Perm(), tt.wantMode)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("temp files left behind: %v", entries)
			}
		})
	}
}

// A write that cannot finish leaves the old file and no temp file.
func TestWriteFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "target")
	// A directory in the way makes the rename fail after the temp file is written.
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(path, "keep"), []byte("x"), 0o644)
	if err := Write(path, []byte("new"), 0o644); err == nil {
		t.Fatal("want an error renaming over a directory")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || !entries[0].IsDir() {
		t.Errorf("left behind: %v", entries)
	}
	if err := Write(filepath.Join(dir, "missing-dir", "f"), []byte("x"), 0o644); err == nil {
		t.Error("want an error for a missing directory")
	}
}

func TestWriteIfChanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "daemon.json")
	steps := []struct {
		data      string
		wantWrote bool
	}{
		{"a", true},  // new file, parent made
		{"a", false}, // same content: untouched
		{"b", true},  // changed
	}
	for i, s := range steps {
		before, _ := os.Stat(path)
		wrote, err := WriteIfChanged(path, []byte(s.data), 0o644)
		if err != nil || wrote != s.wantWrote {
			t.Fatalf("step %d: wrote %v err %v, want %v", i, wrote, err, s.wantWrote)
		}
		after, _ := os.Stat(path)
		if !s.wantWrote && !os.SameFile(before, after) {
			t.Errorf("step %d: file replaced although unchanged", i)
		}
		if data, _ := os.ReadFile(path); string(data) != s.data {
			t.Errorf("step %d: content %q", i, data)
		}
	}
}

func ptr(m os.FileMode) *os.FileMode { return &m }

// TestReplaceKeepsOwnerXattrsAndSymlink: Replace keeps the file's owner,
// group, mode and extended attributes, and edits a symlink's target.
func TestReplaceKeepsOwnerXattrsAndSymlink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	os.WriteFile(real, []byte("old"), 0o640)
	os.Chown(real, 1000, 1001)
	if err := unix.Setxattr(real, "user.test", []byte("kept"), 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	link := filepath.Join(dir, "config.json")
	os.Symlink("real.json", link)
	if err := Replace(link, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("symlink replaced: %v %v", fi.Mode(), err)
	}
	data, _ := os.ReadFile(real)
	fi, _ := os.Stat(real)
	st := fi.Sys().(*syscall.Stat_t)
	buf := make([]byte, 16)
	n, err := unix.Getxattr(real, "user.test", buf)
	if string(data) != "new" || st.Uid != 1000 || st.Gid != 1001 || fi.Mode().Perm() != 0o640 || err != nil || string(buf[:n]) != "kept" {
		t.Fatalf("got %q %d:%d %v xattr %q %v", data, st.Uid, st.Gid, fi.Mode(), buf[:max(n, 0)], err)
	}
	if err := Replace(filepath.Join(dir, "missing.json"), []byte("x")); err == nil {
		t.Fatal("Replace of a missing file succeeded")
	}
}

func TestWriteVolatile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "entry.json")
	for _, data := range []string{"first", "second, longer", "3"} {
		if err := WriteVolatile(p, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); string(got) != data {
			t.Fatalf("got %q, want %q", got, data)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if err := WriteVolatile(filepath.Join(dir, "no/such/dir"), nil, 0o644); err == nil {
		t.Error("want an error for a missing directory")
	}
}
