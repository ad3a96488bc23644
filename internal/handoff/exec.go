package handoff

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"
)

// ErrUnsure: LookPath cannot tell what os/exec's LookPath would answer
// (a bare name found through a relative PATH entry, which os/exec refuses
// or takes as GODEBUG=execerrdot says).
var ErrUnsure = errors.New("found through a relative PATH entry")

// FindRuntime returns the first of names that resolves to an executable:
// absolute paths as they are, bare names through PATH (with look: os/exec's
// LookPath, or nil for this package's LookPath, which may answer
// ErrUnsure; FindRuntime then returns it). A candidate that is this very
// program is skipped, so a misconfigured list cannot loop.
func FindRuntime(names []string, look func(string) (string, error)) (string, error) {
	// find also returns the stat it made of the file, if it made one.
	find := lookPathInfo
	if look != nil {
		find = func(name string) (string, os.FileInfo, error) {
			p, err := look(name)
			return p, nil, err
		}
	}
	self, _ := os.Executable()
	var selfInfo os.FileInfo
	if self != "" {
		selfInfo, _ = os.Stat(self)
	}
	for _, name := range names {
		p, fi, err := lookPath(name, find)
		if errors.Is(err, ErrUnsure) {
			return "", err
		}
		if err != nil {
			continue
		}
		if selfInfo != nil {
			if fi == nil {
				fi, _ = os.Stat(p)
			}
			if fi != nil && os.SameFile(fi, selfInfo) {
				continue
			}
		}
		if !path.IsAbs(p) {
			// filepath.Abs
			if wd, err := os.Getwd(); err == nil {
				p = path.Join(wd, p)
			}
		}
		return p, nil
	}
	return "", fmt.Errorf("no low-level runtime found (tried %v)", names)
}

// defaultPath is searched when PATH is empty: Podman runs `delete` with no
// PATH at all, and runc's state must still be cleaned up by runc.
var defaultPath = [...]string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// lookPath is find, with defaultPath standing in for an empty PATH.
func lookPath(name string, find func(string) (string, os.FileInfo, error)) (string, os.FileInfo, error) {
	if indexByte(name, '/') >= 0 || os.Getenv("PATH") != "" {
		return find(name)
	}
	for _, dir := range defaultPath {
		p := path.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, fi, nil
		}
	}
	return "", nil, errNotFound
}

var errNotFound = errors.New("executable file not found in $PATH")

// LookPath is os/exec's LookPath on Linux (Go 1.26), but for the case it
// leaves to GODEBUG: a name found through a relative PATH entry is
// ErrUnsure.
func LookPath(file string) (string, error) {
	p, _, err := lookPathInfo(file)
	return p, err
}

// lookPathInfo is LookPath, with the stat of the file it found.
func lookPathInfo(file string) (string, os.FileInfo, error) {
	switch file {
	case "", ".", "..":
		return "", nil, errNotFound
	}
	if indexByte(file, '/') >= 0 {
		fi, err := findExecutable(file)
		if err != nil {
			return "", nil, err
		}
		return file, fi, nil
	}
	// filepath.SplitList: none for an empty PATH.
	list := os.Getenv("PATH")
	for more := list != ""; more; {
		var dir string
		dir, list, more = cut(list, ':')
		if dir == "" {
			// Unix shell semantics: path element "" means "."
			dir = "."
		}
		p := path.Join(dir, file)
		if fi, err := findExecutable(p); err == nil {
			if !path.IsAbs(p) {
				return p, nil, ErrUnsure
			}
			return p, fi, nil
		}
	}
	return "", nil, errNotFound
}

// findExecutable is os/exec's: a file (not a directory) the effective
// user may execute, by faccessat2(AT_EACCESS), else by its mode bits; and
// its stat.
func findExecutable(file string) (os.FileInfo, error) {
	d, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	m := d.Mode()
	if m.IsDir() {
		return nil, syscall.EISDIR
	}
	const atFdcwd, atEaccess = -0x64, 0x200 // AT_FDCWD, AT_EACCESS
	err = syscall.Faccessat(atFdcwd, file, 1 /* X_OK */, atEaccess)
	if err == nil || (err != syscall.ENOSYS && err != syscall.EPERM) {
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	if m&0o111 != 0 {
		return d, nil
	}
	return nil, fs.ErrPermission
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
