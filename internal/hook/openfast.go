package hook

import (
	"errors"
	"fmt"
	"os"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// openRegular opens the regular file at p inside the root for reading.
// With openat2 (Linux 5.6+) the kernel resolves p inside the root
// (RESOLVE_IN_ROOT, no magic links) in one call; the file is first opened
// O_PATH and checked to be a regular file, so that no device or FIFO the
// image put in a library folder is ever opened for reading, then opened
// again the same way and checked to be the same file. That is two
// syscalls where a reopen through /proc costs a dozen, once per library.
// Older kernels take securejoin's path.
func (r *Root) openRegular(p string) (*os.File, error) {
	rootfd := int(r.dir.Fd())
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	pfd, err := unix.Openat2(rootfd, p, &how)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		return r.openRegularSlow(p)
	}
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: p, Err: err}
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errNotRegular
	}
	how.Flags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY
	fd, err := unix.Openat2(rootfd, p, &how)
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: p, Err: err}
	}
	var st2 unix.Stat_t
	if err := unix.Fstat(fd, &st2); err != nil || st2.Dev != st.Dev || st2.Ino != st.Ino {
		unix.Close(fd)
		return nil, fmt.Errorf("%s changed while it was opened", p)
	}
	return os.NewFile(uintptr(fd), p), nil
}

var errNotRegular = errors.New("not a regular file")

func (r *Root) openRegularSlow(p string) (*os.File, error) {
	fh, err := r.open(p)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := stat(fh)
	if err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errNotRegular
	}
	return pathrs.Reopen(fh, unix.O_RDONLY|unix.O_CLOEXEC)
}
