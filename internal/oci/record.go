package oci

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// record.go remembers which low-level runtime created a container, so that
// state, kill and delete reach it even when config.toml is broken or has
// changed since. One small file per container, in the runtime's --root
// (a dot file: runc and crun list only the directories there), else in
// DefaultRecordDir. A ledger of containers may replace it later.

// DefaultRecordDir holds the records of containers made without --root.
var DefaultRecordDir = "/run/nvbind/runtimes"

// recordPath is the record of a's container; "" when it has none (no ID,
// or one that is not a plain file name).
func recordPath(a *Args) string {
	id := a.ContainerID
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") || len(id) > 200 {
		return ""
	}
	if a.Root != "" {
		return filepath.Join(a.Root, ".nvbind-runtime."+id)
	}
	return filepath.Join(DefaultRecordDir, id)
}

// RecordRuntime writes down runtime as the one that creates a's container.
func RecordRuntime(a *Args, runtime string) error {
	path := recordPath(a)
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("record runtime: %w", err)
	}
	// Temp file and rename: a reader sees a whole record or none. No
	// fsync: the record lives as long as the runtime's state on tmpfs.
	tmp, err := os.CreateTemp(dir, ".nvbind-tmp-*")
	if err != nil {
		return fmt.Errorf("record runtime: %w", err)
	}
	_, werr := tmp.WriteString(runtime + "\n")
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("record runtime: %w", werr)
	}
	return nil
}

// RecordedRuntime returns the runtime recorded for a's container, if an
// executable one is.
func RecordedRuntime(a *Args) (string, bool) {
	path := recordPath(a)
	if path == "" {
		return "", false
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", false
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	buf := make([]byte, 4096)
	n, _ := f.Read(buf)
	runtime, ok := strings.CutSuffix(string(buf[:n]), "\n")
	if !ok || !filepath.IsAbs(runtime) {
		return "", false
	}
	if fi, err := os.Stat(runtime); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return "", false
	}
	return runtime, true
}

// ForgetRuntime removes a's record (on delete).
func ForgetRuntime(a *Args) {
	if path := recordPath(a); path != "" {
		os.Remove(path)
	}
}
