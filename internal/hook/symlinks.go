package hook

import (
	"errors"
	"fmt"
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
func (h *Hook) CreateSymlinks(links []Link) error {
	for _, l := range links {
		if err := h.createSymlink(l); err != nil {
			return fmt.Errorf("link %s -> %s: %w", l.Path, l.Target, err)
		}
	}
	return nil
}

func (h *Hook) createSymlink(l Link) error {
	dir, base, err := h.Root.parent(l.Path, true)
	if err != nil {
		return err
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	// Something else may create or remove the name between the look and
	// the change; look again a few times rather than fail at once.
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
