package hook

import (
	"errors"
	"fmt"
	"os"
	"path"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// openfast.go resolves paths inside the root with openat2(2) directly
// (Linux 5.6+): RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS makes the kernel
// itself keep every step of the lookup, symlinks and ".." included, inside
// the root, in one call. securejoin's pathrs-lite does the same lookup but
// also names each handle and reopens O_PATH handles through a checked
// /proc, whose setup cost the hook more than all its own resolving. Where
// openat2 is missing (ENOSYS) or filtered (EPERM), securejoin's path is
// taken: it emulates the lookup safely in user space.

// inRoot is how every lookup from the root resolves.
const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// errNoOpenat2 means the caller must take securejoin's path.
var errNoOpenat2 = errors.New("openat2 unavailable")

// noOpenat2 makes openat2 report it unavailable (tests of the securejoin
// path).
var noOpenat2 = false

// openat2 opens p (relative to dirfd) as how says, retrying the EAGAIN the
// kernel returns when a rename raced the lookup (as securejoin does).
func openat2(dirfd int, p string, how *unix.OpenHow) (int, error) {
	if noOpenat2 {
		return -1, errNoOpenat2
	}
	for range 32 {
		fd, err := unix.Openat2(dirfd, p, how)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EAGAIN):
			continue
		case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
			return -1, errNoOpenat2
		default:
			return -1, &os.PathError{Op: "openat2", Path: p, Err: err}
		}
	}
	return -1, &os.PathError{Op: "openat2", Path: p, Err: unix.EAGAIN}
}

// openIn resolves p inside the root with flags (O_CLOEXEC added).
func (r *Root) openIn(p string, flags int) (*os.File, error) {
	fd, err := openat2(int(r.dir.Fd()), p, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: inRoot})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), p), nil
}

// open resolves p inside the root, following symlinks without ever leaving
// it (magic links such as /proc/self/root are refused), and returns an
// O_PATH handle.
func (r *Root) open(p string) (*os.File, error) {
	f, err := r.openIn(p, unix.O_PATH)
	if errors.Is(err, errNoOpenat2) {
		return pathrs.OpenatInRoot(r.dir, p)
	}
	return f, err
}

// openDir opens the directory p inside the root for reading (listing, and
// *at calls).
func (r *Root) openDir(p string) (*os.File, error) {
	f, err := r.openIn(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if !errors.Is(err, errNoOpenat2) {
		return f, err
	}
	h, err := pathrs.OpenatInRoot(r.dir, p)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
}

// mkdirAll makes directory p (a clean container path) and its parents
// inside the root and returns a handle on it. An existing directory costs
// one openat2; a missing one is made under its parent's handle (made the
// same way) with mkdirat, then opened beneath that handle with no symlink
// followed, as securejoin's MkdirAllHandle does.
func (r *Root) mkdirAll(p string) (*os.File, error) {
	if len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1] // path.Split's folder: the same directory
	}
	if p == "" || p[0] != '/' || path.Clean(p) != p {
		// Only clean absolute paths are split into components here.
		return pathrs.MkdirAllHandle(r.dir, p, 0o755)
	}
	f, err := r.mkdirAllFast(p, 0)
	if errors.Is(err, errNoOpenat2) {
		return pathrs.MkdirAllHandle(r.dir, p, 0o755)
	}
	return f, err
}

// maxMkdirDepth bounds mkdirAllFast's recursion (a container path has at
// most PATH_MAX/2 components).
const maxMkdirDepth = unix.PathMax / 2

func (r *Root) mkdirAllFast(p string, depth int) (*os.File, error) {
	f, err := r.openIn(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, unix.ENOENT) || p == "/" || depth > maxMkdirDepth {
		return f, err
	}
	dir, base := path.Split(p)
	parent, err := r.mkdirAllFast(path.Clean(dir), depth+1)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	if err := unix.Mkdirat(int(parent.Fd()), base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, &os.PathError{Op: "mkdirat", Path: p, Err: err}
	}
	fd, err := openat2(int(parent.Fd()), base, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), p), nil
}

// openRegular opens the regular file at p inside the root for reading.
// The file is first opened O_PATH and checked to be a regular file, so
// that no device or FIFO the image put in a library folder is ever opened
// for reading, then opened again the same way and checked to be the same
// file. That is two syscalls where a reopen through /proc costs a dozen,
// once per library.
func (r *Root) openRegular(p string) (*os.File, error) {
	fd, err := r.openRegularFD(p)
	if errors.Is(err, errNoOpenat2) {
		return r.openRegularSlow(p)
	}
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), p), nil
}

// openRegularFD is openRegular's fast path, returning the bare descriptor
// (errNoOpenat2 without openat2): reading a library's headers with pread
// on it spares os.File's set-up, which tries the poller on every file.
func (r *Root) openRegularFD(p string) (int, error) {
	rootfd := int(r.dir.Fd())
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: inRoot}
	pfd, err := openat2(rootfd, p, &how)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return -1, errNotRegular
	}
	how.Flags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY
	fd, err := openat2(rootfd, p, &how)
	if err != nil {
		return -1, err
	}
	var st2 unix.Stat_t
	if err := unix.Fstat(fd, &st2); err != nil || st2.Dev != st.Dev || st2.Ino != st.Ino {
		unix.Close(fd)
		return -1, fmt.Errorf("%s changed while it was opened", p)
	}
	return fd, nil
}

var errNotRegular = errors.New("not a regular file")

func (r *Root) openRegularSlow(p string) (*os.File, error) {
	fh, err := pathrs.OpenatInRoot(r.dir, p)
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
