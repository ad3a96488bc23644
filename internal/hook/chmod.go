package hook

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/cyphar/filepath-securejoin/pathrs-lite/procfs"
	"golang.org/x/sys/unix"
)

// ParseMode parses chmod's --mode: octal permission bits, at most 0777
// (setuid, setgid and sticky bits have no place on injected files).
func ParseMode(s string) (os.FileMode, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o777 {
		return 0, fmt.Errorf("mode %q is not an octal permission between 0 and 0777", s)
	}
	return os.FileMode(v), nil
}

// Chmod sets mode on each path inside the rootfs. A path whose last
// component is a symlink is refused, not followed; the change is made
// through a handle on the file itself, so nothing can be swapped in between.
func (h *Hook) Chmod(mode os.FileMode, paths []string) error {
	for _, p := range paths {
		if err := h.chmod(mode, p); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
	}
	return nil
}

func (h *Hook) chmod(mode os.FileMode, p string) error {
	dir, base, err := h.Root.parent(p, false)
	if err != nil {
		return err
	}
	defer dir.Close()
	fd, err := unix.Openat(int(dir.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	st, err := stat(f)
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return errors.New("is a symlink; refusing to follow it")
	}
	if os.FileMode(st.Mode)&os.ModePerm == mode && st.Mode&(unix.S_ISUID|unix.S_ISGID|unix.S_ISVTX) == 0 {
		return nil
	}
	return fchmod(f, mode)
}

// fchmod changes the mode of an O_PATH handle: fchmodat2(AT_EMPTY_PATH) on
// Linux 6.6+, else chmod through the handle's /proc/thread-self/fd entry in
// a procfs that securejoin has checked is real.
func fchmod(f *os.File, mode os.FileMode) error {
	err := unix.Fchmodat(int(f.Fd()), "", uint32(mode), unix.AT_EMPTY_PATH)
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return fchmodProc(f, mode)
}

// fchmodProc is fchmod for kernels without fchmodat2.
func fchmodProc(f *os.File, mode os.FileMode) error {
	proc, err := procfs.OpenProcRoot()
	if err != nil {
		return err
	}
	defer proc.Close()
	fdDir, closer, err := proc.OpenThreadSelf("fd")
	if err != nil {
		return err
	}
	defer closer()
	defer fdDir.Close()
	return unix.Fchmodat(int(fdDir.Fd()), strconv.Itoa(int(f.Fd())), uint32(mode), 0)
}
