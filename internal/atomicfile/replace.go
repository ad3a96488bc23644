package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(target, &st); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("write %s: not a regular file", path)
	}
	names, err := listXattrs(target)
	if err != nil {
		return fmt.Errorf("write %s: read extended attributes: %w", path, err)
	}
	dir := filepath.Dir(target)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	fd := int(tmp.Fd())
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
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
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
