package hook

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Link is a symlink to make: Path, a container path, pointing at Target.
// Target is only ever stored in the link, never resolved by the hook.
type Link struct {
	Target, Path string
}

// ParseLink parses the TARGET::LINK form of create-symlinks' --link.
func ParseLink(s string) (Link, error) {
	target, link, ok := strings.Cut(s, "::")
	if !ok || target == "" || link == "" {
		return Link{}, fmt.Errorf("link %q is not TARGET::LINK", s)
	}
	if len(target) > unix.PathMax || strings.IndexByte(target, 0) >= 0 {
		return Link{}, fmt.Errorf("link %q: bad target", s)
	}
	p, err := ContainerPath(link)
	if err != nil {
		return Link{}, fmt.Errorf("link %q: %w", s, err)
	}
	return Link{Target: target, Path: p}, nil
}

// CreateSymlinks makes each link inside the rootfs, creating its parent
// directories there. It is idempotent: a link that already points at its
// target is kept, a symlink pointing elsewhere is replaced (atomically, and
// never followed), and anything else at the path is left alone with a
// warning.
//
// Most links share a folder (the driver's library folder), so each folder
// is resolved (and made) once, not once per link: resolving inside the
// rootfs is most of the hook's work.
func (h *Hook) CreateSymlinks(links []Link) error {
	dirs := map[string]*os.File{}
	defer func() {
		for _, d := range dirs {
			d.Close()
		}
	}()
	for _, l := range links {
		dirPath, base := path.Split(l.Path)
		if base == "" {
			return fmt.Errorf("link %s: names the root directory", l.Path)
		}
		dir := dirs[dirPath]
		if dir == nil {
			var err error
			if dir, err = h.Root.mkdirAll(dirPath); err != nil {
				return fmt.Errorf("link %s -> %s: %w", l.Path, l.Target, err)
			}
			dirs[dirPath] = dir
		}
		if err := h.createSymlink(l, int(dir.Fd()), base); err != nil {
			return fmt.Errorf("link %s -> %s: %w", l.Path, l.Target, err)
		}
		// A folder held open whose path runs through the new link is not
		// where that path leads any more: resolve it again when used.
		for p, d := range dirs {
			if strings.HasPrefix(p, l.Path+"/") {
				d.Close()
				delete(dirs, p)
			}
		}
	}
	return nil
}

func (h *Hook) createSymlink(l Link, dfd int, base string) error {
	// Something else may create or remove the name between the look and
	// the change; look again a few times rather than fail at once.
	// Most links are new: make the link first and look only if the name
	// is taken.
	err := unix.Symlinkat(l.Target, dfd, base)
	if err == nil || !errors.Is(err, unix.EEXIST) {
		return err
	}
	for range 3 {
		cur, isLink, err := readlinkat(dfd, base)
		switch {
		case errors.Is(err, unix.ENOENT):
			err := unix.Symlinkat(l.Target, dfd, base)
			if errors.Is(err, unix.EEXIST) {
				continue
			}
			return err
		case err != nil:
			return err
		case !isLink:
			h.warnf("leaving %s alone: it exists and is not a symlink", l.Path)
			return nil
		case cur == l.Target:
			return nil
		default:
			err := replaceSymlink(dfd, base, l.Target)
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return err
		}
	}
	return fmt.Errorf("%s keeps changing under the hook", l.Path)
}
