// Package hook implements nvbind-hook's work on a container's root
// filesystem: the ld.so cache, .so links and device modes. The rootfs
// belongs to the image author and the hook runs on the host as root, so
// every path below the rootfs is resolved inside it (openat2
// RESOLVE_IN_ROOT, or securejoin's emulation on older kernels) and every
// change goes through a file descriptor obtained that way: a symlink in the
// image that points at /etc, ../../.. or a host directory can't make the
// hook read or write outside the rootfs, and nothing is checked by path and
// then used by path again.
package hook

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Root is a container root filesystem, held open by a handle that every
// lookup starts from.
type Root struct {
	dir *os.File // O_PATH handle on the rootfs
}

// OpenRoot opens the rootfs directory at hostPath (a host path, trusted:
// it comes from the bundle the engine made).
func OpenRoot(hostPath string) (*Root, error) {
	dir, err := os.OpenFile(hostPath, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	return &Root{dir: dir}, nil
}

// Close releases the rootfs handle.
func (r *Root) Close() error { return r.dir.Close() }

// ContainerPath cleans p as an absolute path inside the container.
func ContainerPath(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return "", fmt.Errorf("%q is not an absolute path", p)
	}
	if len(p) > unix.PathMax {
		return "", fmt.Errorf("path of %d bytes is too long", len(p))
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("%q contains a NUL byte", p)
	}
	return path.Clean(p), nil
}

// parent resolves the directory holding p inside the root (creating it and
// its parents when create is set) and returns a handle on it with p's last
// component, which is then only ever used with *at calls on that handle.
func (r *Root) parent(p string, create bool) (*os.File, string, error) {
	p, err := ContainerPath(p)
	if err != nil {
		return nil, "", err
	}
	dir, base := path.Split(p)
	if base == "" {
		return nil, "", fmt.Errorf("%q names the root directory", p)
	}
	var h *os.File
	if create {
		h, err = r.mkdirAll(dir)
	} else {
		h, err = r.open(dir)
	}
	if err != nil {
		return nil, "", err
	}
	return h, base, nil
}

// stat is fstat on a handle.
func stat(f *os.File) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(int(f.Fd()), &st)
	return st, err
}

// readFile returns the content of the regular file at p inside the root,
// refusing files larger than max.
func (r *Root) readFile(p string, max int64) ([]byte, error) {
	f, err := r.openRegular(p)
	if errors.Is(err, errNotRegular) {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := stat(f)
	if err != nil {
		return nil, err
	}
	if st.Size > max {
		return nil, fmt.Errorf("%s: %d bytes is more than the %d allowed", p, st.Size, max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: grew past the %d bytes allowed", p, max)
	}
	return data, nil
}

// writeFile replaces the file at p inside the root with data, atomically
// (temp file beside it, rename), creating the
// parent directories inside the root. It writes nothing when the file
// already holds data, and reports whether it wrote. The rename replaces a
// symlink at p rather than following it.
func (r *Root) writeFile(p string, data []byte, perm os.FileMode) (bool, error) {
	if old, err := r.readFile(p, int64(len(data))); err == nil && string(old) == string(data) {
		return false, nil
	}
	dir, base, err := r.parent(p, true)
	if err != nil {
		return false, fmt.Errorf("write %s: %w", p, err)
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	tmp, err := tempName(base)
	if err != nil {
		return false, err
	}
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return false, fmt.Errorf("create temp file for %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	fail := func(err error) (bool, error) {
		f.Close()
		unix.Unlinkat(dfd, tmp, 0)
		return false, fmt.Errorf("write %s: %w", p, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(perm.Perm()); err != nil { // not subject to the umask
		return fail(err)
	}
	// No fsync of the file or its directory: a container's rootfs (an
	// overlay upper dir, or a bundle's copy) does not outlive the host
	// staying up, and the hook runs again at every create. The rename
	// keeps readers from ever seeing a half-written file.
	if err := f.Close(); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return false, fmt.Errorf("write %s: %w", p, err)
	}
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return false, fmt.Errorf("write %s: %w", p, err)
	}
	return true, nil
}

// tempName is a fresh hidden name beside base.
func tempName(base string) (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	name := "." + base + ".nvbind-" + hex.EncodeToString(b[:])
	if len(name) > 255 {
		name = ".nvbind-" + hex.EncodeToString(b[:])
	}
	return name, nil
}

// readlinkat reads the symlink name in dir; ok is false when name is not a
// symlink (or does not exist: err is then ENOENT).
func readlinkat(dfd int, name string) (target string, ok bool, err error) {
	buf := make([]byte, unix.PathMax+1)
	n, err := unix.Readlinkat(dfd, name, buf)
	if errors.Is(err, unix.EINVAL) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(buf[:n]), true, nil
}

// replaceSymlink points the symlink (or empty slot) name in dir at target
// atomically: a new link beside it renamed over it.
func replaceSymlink(dfd int, name, target string) error {
	tmp, err := tempName(name)
	if err != nil {
		return err
	}
	if err := unix.Symlinkat(target, dfd, tmp); err != nil {
		return err
	}
	if err := unix.Renameat(dfd, tmp, dfd, name); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return err
	}
	return nil
}
