package atomicfile

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Replace rewrites an existing file atomically and keeps what describes it
// besides its bytes: mode, owner and group, and its extended attributes
// (the SELinux label security.selinux, POSIX ACLs, user.* attributes). A
// symlink is edited through its target, never replaced by a regular file.
// It does not fsync: its one use is a bundle's config.json, which the
// runtime reads at once and the engine writes anew for every start, so a
// crash can only lose a file nothing would read again; the rename alone
// keeps readers from a partial file. (On a bundle on disk, Podman's, the
// two fsyncs were a GPU create's largest single cost.)
func Replace(path string, data []byte) error {
	target, st, err := regularTarget(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	names, err := listXattrs(target)
	if err != nil {
		return fmt.Errorf("write %s: read extended attributes: %w", path, err)
	}
	fd, tmp, err := createTemp(target)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fail := func(err error) error {
		unix.Close(fd)
		unix.Unlink(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := writeAll(fd, data); err != nil {
		return fail(&os.PathError{Op: "write", Path: tmp, Err: err})
	}
	// Owner first: chown clears set-id bits, which chmod then restores.
	if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
		return fail(fmt.Errorf("keep owner: %w", err))
	}
	if err := unix.Fchmod(fd, st.Mode&0o7777); err != nil {
		return fail(fmt.Errorf("keep mode: %w", err))
	}
	for _, name := range names {
		val, err := getXattr(target, name)
		if err != nil {
			return fail(fmt.Errorf("read extended attribute %s: %w", name, err))
		}
		if err := unix.Fsetxattr(fd, name, val, 0); err != nil {
			return fail(fmt.Errorf("keep extended attribute %s: %w", name, err))
		}
	}
	if err := unix.Close(fd); err != nil {
		unix.Unlink(tmp)
		return fmt.Errorf("write %s: %w", path, &os.PathError{Op: "close", Path: tmp, Err: err})
	}
	if err := unix.Rename(tmp, target); err != nil {
		unix.Unlink(tmp)
		return fmt.Errorf("write %s: %w", path, &os.LinkError{Op: "rename", Old: tmp, New: target, Err: err})
	}
	return nil
}

// regularTarget is the regular file path names, through a symlink, and its
// stat. The common case, path itself a regular file, costs one lstat.
func regularTarget(path string) (string, *unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return "", nil, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	target := path
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		var err error
		if target, err = filepath.EvalSymlinks(path); err != nil {
			return "", nil, err
		}
		if err := unix.Stat(target, &st); err != nil {
			return "", nil, &os.PathError{Op: "stat", Path: target, Err: err}
		}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", nil, errors.New("not a regular file")
	}
	return target, &st, nil
}

// createTemp creates .<name>.tmp-<random> beside target, as os.CreateTemp
// does, with plain system calls: an os.File would switch the descriptor
// to non-blocking and try to register it with the network poller, five
// more system calls for a file written once.
func createTemp(target string) (int, string, error) {
	prefix := filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".tmp-")
	for try := 0; ; try++ {
		name := prefix + strconv.FormatUint(uint64(rand.Uint32()), 10)
		fd, err := unix.Open(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EEXIST) && try < 10000 {
			continue
		}
		if err != nil {
			return -1, "", &os.PathError{Op: "open", Path: name, Err: err}
		}
		return fd, name, nil
	}
}

// listXattrs names the extended attributes of path; none where the file
// system has none.
func listXattrs(path string) ([]string, error) {
	size, err := unix.Listxattr(path, nil)
	if errors.Is(err, syscall.ENOTSUP) {
		return nil, nil
	}
	if err != nil || size == 0 {
		return nil, err
	}
	buf := make([]byte, size)
	n, err := unix.Listxattr(path, buf)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			names = append(names, s)
		}
	}
	return names, nil
}

func getXattr(path, name string) ([]byte, error) {
	size, err := unix.Getxattr(path, name, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	n, err := unix.Getxattr(path, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}
