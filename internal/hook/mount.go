package hook

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mount.go holds the rooted primitives the prestart door (internal/hookdoor)
// uses to put devices and driver files into a created container.

// Mknod makes device node d inside the root (its parents too); a node
// already there for the same device is kept.
func (r *Root) Mknod(d rspec.LinuxDevice) error {
	var kind uint32
	switch d.Type {
	case "c", "u":
		kind = unix.S_IFCHR
	case "b":
		kind = unix.S_IFBLK
	case "p":
		kind = unix.S_IFIFO
	default:
		return fmt.Errorf("unknown device type %q", d.Type)
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(d.FileMode.Perm())
	}
	dir, base, err := r.parent(d.Path, true)
	if err != nil {
		return err
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	rdev := unix.Mkdev(uint32(d.Major), uint32(d.Minor))
	err = unix.Mknodat(dfd, base, kind|mode, int(rdev))
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != kind || st.Rdev != rdev {
			return errors.New("something else is already there")
		}
		return nil
	}
	if err != nil {
		return err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	return unix.Fchownat(dfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

// Attach mounts tree (a detached mount, from open_tree) at dest inside the
// root: the mount point (a file or directory, as isDir says) is made
// inside the root if missing, and the mount lands on the handle resolved
// there, never on a path walked again.
func (r *Root) Attach(tree *os.File, dest string, isDir bool) error {
	dst, err := ContainerPath(dest)
	if err != nil {
		return err
	}
	target, err := r.open(dst)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		// Missing, or under a dangling link: made inside the root, as the
		// runtime makes its own mount points.
		if err := r.makeMountPoint(dst, isDir); err != nil {
			return err
		}
		target, err = r.open(dst)
	}
	if err != nil {
		return err
	}
	defer target.Close()
	return unix.MoveMount(int(tree.Fd()), "", int(target.Fd()), "",
		unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

func (r *Root) makeMountPoint(p string, isDir bool) error {
	dir, base, err := r.parent(p, true)
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, os.ErrNotExist) {
		dir, base, err = r.parentFollowing(p)
	}
	if err != nil {
		return err
	}
	defer dir.Close()
	if isDir {
		err = unix.Mkdirat(int(dir.Fd()), base, 0o755)
	} else {
		var fd int
		fd, err = unix.Openat(int(dir.Fd()), base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(fd)
		}
	}
	if errors.Is(err, unix.EEXIST) {
		return nil // a dangling symlink, say: the open that follows decides
	}
	return err
}

// parentFollowing is parent(p, true) for a path under a dangling symlink
// (an image's /usr/lib/x86_64-linux-gnu -> /somewhere): the link is
// resolved inside the root, as the runtime resolves its mount points, and
// the missing directories are made there. The container has not started,
// so nothing inside it can change the links in between.
func (r *Root) parentFollowing(p string) (*os.File, string, error) {
	dir, base := path.Split(p)
	joined, err := securejoin.SecureJoin(r.dir.Name(), dir)
	if err != nil {
		return nil, "", err
	}
	rel, err := filepath.Rel(r.dir.Name(), joined)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, "", fmt.Errorf("%s resolves outside the root", p)
	}
	h, err := r.mkdirAll("/" + rel)
	if err != nil {
		return nil, "", err
	}
	return h, base, nil
}
