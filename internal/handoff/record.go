package handoff

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
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
	if id == "" || id == "." || id == ".." || indexByte(id, '/') >= 0 || indexByte(id, 0) >= 0 || len(id) > 200 {
		return ""
	}
	if a.Root != "" {
		return path.Join(a.Root, ".nvbind-runtime."+id)
	}
	return path.Join(DefaultRecordDir, id)
}

// RecordRuntime writes down runtime as the one that creates a's container.
// The record is a symlink to the runtime: made in one call, atomically,
// on every create (no fsync: it lives as long as the runtime's state on
// tmpfs).
func RecordRuntime(a *Args, runtime string) error {
	rec := recordPath(a)
	if rec == "" {
		return nil
	}
	err := os.Symlink(runtime, rec)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(path.Dir(rec), 0o700); err == nil {
			err = os.Symlink(runtime, rec)
		}
	}
	if errors.Is(err, fs.ErrExist) {
		// Left by an earlier container of the same name: kept when it
		// names the same runtime.
		if old, rerr := os.Readlink(rec); rerr == nil && old == runtime {
			return nil
		}
		os.Remove(rec)
		err = os.Symlink(runtime, rec)
	}
	if err != nil {
		return fmt.Errorf("record runtime: %w", err)
	}
	return nil
}

// RecordedRuntime returns the runtime recorded for a's container, if an
// executable one is.
func RecordedRuntime(a *Args) (string, bool) {
	rec := recordPath(a)
	if rec == "" {
		return "", false
	}
	runtime, err := os.Readlink(rec)
	if err != nil || !path.IsAbs(runtime) {
		return "", false
	}
	if fi, err := os.Stat(runtime); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return "", false
	}
	return runtime, true
}

// ForgetRuntime removes a's record (on delete).
func ForgetRuntime(a *Args) {
	if rec := recordPath(a); rec != "" {
		os.Remove(rec)
	}
}
