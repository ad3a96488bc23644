// Package spectrust decides whether a CDI spec file may be trusted by a
// runtime running as root. A spec names host binaries that run as root
// (its hooks) and host paths bound into containers, so a spec file, or a
// directory on its path, that a user other than root can change would let
// that user run code as root on the host. Like sshd's StrictModes, such a
// file is skipped, and the reason names it.
package spectrust

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/sys/userns"
)

// Checker checks spec files; it remembers the directories it has checked.
// The zero value checks for root (uid 0).
type Checker struct {
	// UID is the one owner trusted besides root.
	UID  uint32
	dirs map[string]error
}

// Check returns nil when path, after following symlinks, is a file that
// only the trusted owner can change: it and every directory above it are
// owned by root (or UID) and not writable by group or others. A directory
// writable by all is allowed when it is root's and sticky (/tmp): others
// cannot rename or remove what they do not own there.
func (c *Checker) Check(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	if err := c.check(real, false); err != nil {
		if real != path {
			return fmt.Errorf("%s (through %s): %w", real, path, err)
		}
		return err
	}
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		if err := c.checkDir(dir); err != nil {
			return err
		}
		if dir == "/" || dir == "." {
			return nil
		}
	}
}

func (c *Checker) checkDir(dir string) error {
	if c.dirs == nil {
		c.dirs = map[string]error{}
	}
	if err, ok := c.dirs[dir]; ok {
		return err
	}
	err := c.check(dir, true)
	c.dirs[dir] = err
	return err
}

func (c *Checker) check(path string, isDir bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner known", path)
	}
	what := "spec file"
	if isDir {
		what = "directory"
	}
	if st.Uid != 0 && st.Uid != c.UID {
		return fmt.Errorf("%s %s is owned by uid %d, not root", what, path, st.Uid)
	}
	mode := fi.Mode()
	if mode&0o022 == 0 {
		return nil
	}
	if isDir && mode&os.ModeSticky != 0 && st.Uid == 0 {
		return nil
	}
	return fmt.Errorf("%s %s is writable by %s (mode %v)", what, path, writers(mode), mode.Perm())
}

func writers(mode os.FileMode) string {
	var w []string
	if mode&0o020 != 0 {
		w = append(w, "its group")
	}
	if mode&0o002 != 0 {
		w = append(w, "everyone")
	}
	return strings.Join(w, " and ")
}

// Enforced reports whether spec files must pass Check: only a runtime
// running as the host's root gives their hooks root's power. Root of a
// user namespace (rootless Podman's runtime) is the unprivileged user on
// the host, whose own files its specs may well be.
func Enforced() bool { return os.Geteuid() == 0 && !userns.RunningInUserNS() }
