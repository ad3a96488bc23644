package hook

import (
	"os"
	"path/filepath"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestMknod(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "dev"), 0o755)
	os.WriteFile(filepath.Join(dir, "dev/nvidia1"), nil, 0o644)
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mode := os.FileMode(0o640)
	uid := uint32(12)
	if err := r.Mknod(rspec.LinuxDevice{Path: "/dev/sub/nvidia0", Type: "c", Major: 195, Minor: 0, FileMode: &mode, UID: &uid}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Lstat(filepath.Join(dir, "dev/sub/nvidia0"), &st)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(195, 0) || st.Uid != 12 {
		t.Errorf("node: %+v", st)
	}
	// Again: the same node is kept; something else at the path is an error.
	if err := r.Mknod(rspec.LinuxDevice{Path: "/dev/sub/nvidia0", Type: "c", Major: 195, Minor: 0}); err != nil {
		t.Errorf("same node again: %v", err)
	}
	if err := r.Mknod(rspec.LinuxDevice{Path: "/dev/nvidia1", Type: "c", Major: 195, Minor: 1}); err == nil {
		t.Error("a regular file at the path was accepted")
	}
	if err := r.Mknod(rspec.LinuxDevice{Path: "/dev/x", Type: "z"}); err == nil {
		t.Error("an unknown type was accepted")
	}
}
