package oci

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// FindRuntime returns the first of names that resolves to an executable:
// absolute paths as they are, bare names through PATH. A candidate that is
// this very program is skipped, so a misconfigured list cannot loop.
func FindRuntime(names []string) (string, error) {
	self, _ := os.Executable()
	var selfInfo os.FileInfo
	if self != "" {
		selfInfo, _ = os.Stat(self)
	}
	for _, name := range names {
		path, err := lookPath(name)
		if err != nil {
			continue
		}
		if selfInfo != nil {
			if fi, err := os.Stat(path); err == nil && os.SameFile(fi, selfInfo) {
				continue
			}
		}
		if !filepath.IsAbs(path) {
			if abs, err := filepath.Abs(path); err == nil {
				path = abs
			}
		}
		return path, nil
	}
	return "", fmt.Errorf("no low-level runtime found (tried %v)", names)
}

// defaultPath is searched when PATH is empty: Podman runs `delete` with no
// PATH at all, and runc's state must still be cleaned up by runc.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath is exec.LookPath, with defaultPath standing in for an empty PATH.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") || os.Getenv("PATH") != "" {
		return exec.LookPath(name)
	}
	for _, dir := range filepath.SplitList(defaultPath) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// Exec replaces this process with the low-level runtime, passing argv (the
// arguments after the program name) and the environment unchanged. The pid,
// open fds and exit status are then the runtime's own. It returns only on
// failure.
func Exec(runtime string, argv []string) error {
	full := make([]string, 0, len(argv)+1)
	full = append(full, runtime)
	full = append(full, argv...)
	err := syscall.Exec(runtime, full, os.Environ())
	if errors.Is(err, syscall.ENOEXEC) {
		return fmt.Errorf("exec %s: not an executable", runtime)
	}
	return fmt.Errorf("exec %s: %w", runtime, err)
}
