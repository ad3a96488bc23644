// Package hookfold does the work of nvbind's createContainer hook in
// nvbind-runtime, before the low-level runtime starts, and takes the hook
// out of the spec. A hook is a process the runtime starts on the create's
// critical path, inside the new container: most of what a GPU create
// cost. Everything it does can be done from the host beforehand when the
// runtime's own steps are known:
//
//   - .so links and the ld cache go into the bundle's rootfs, through the
//     same rooted code the hook runs (internal/hook), with the driver files
//     the runtime will bind-mount read from their host paths;
//   - links under /dev (the DRM by-path links), which the runtime's fresh
//     /dev tmpfs would hide, come from a shared read-only folder of links
//     bind-mounted at their folder;
//   - the chmod of a /dev folder is dropped where runc makes that folder
//     with that mode anyway (a fresh /dev tmpfs, runc, this umask).
//
// Fold is all or nothing: a spec with anything it cannot reproduce exactly
// (a user namespace, a mount over a folder it would write, a path the
// image turns with a symlink, a non-root caller, another runtime, ...)
// keeps its hook untouched, and a failure half way leaves the hook in the
// spec to redo the work (every step is idempotent).
package hookfold

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tidwall/gjson"
	"golang.org/x/sys/unix"

	"github.com/nvbind/nvbind/internal/hook"
	"github.com/nvbind/nvbind/internal/oci"
)

// Options are what Fold needs to know beyond the spec.
type Options struct {
	// HookPath is nvbind-hook's path as the spec names it.
	HookPath string
	// Runc is set when the low-level runtime is runc (its mount and /dev
	// steps are the ones this package reproduces).
	Runc bool
	// LinkDir is the host folder that holds the shared folders of /dev
	// links (under nvbind's state dir).
	LinkDir string
	// Warn receives the hook's warnings (nil drops them).
	Warn io.Writer
}

// Container is what Fold reads of a container beyond the members
// oci.Document decodes.
type Container struct {
	Bundle string
	// Root is root.path (relative to Bundle unless absolute).
	Root string
	// UserNS and JoinsMountNS tell the container's namespaces: a user
	// namespace of its own, and a mount namespace it joins by path.
	UserNS, JoinsMountNS bool
	// MountLabel is linux.mountLabel (SELinux).
	MountLabel string
}

// Read takes a Container from a decoded config.json.
func Read(doc *oci.Document, bundle string) (Container, error) {
	c := Container{Bundle: bundle}
	root, err := doc.Lookup("root", "path")
	if err != nil {
		return c, err
	}
	label, err := doc.Lookup("linux", "mountLabel")
	if err != nil {
		return c, err
	}
	namespaces, err := doc.Lookup("linux", "namespaces")
	if err != nil {
		return c, err
	}
	c.Root, c.MountLabel = root.String(), label.String()
	namespaces.ForEach(func(_, ns gjson.Result) bool {
		switch ns.Get("type").String() {
		case string(rspec.UserNamespace):
			c.UserNS = true
		case string(rspec.MountNamespace):
			c.JoinsMountNS = c.JoinsMountNS || ns.Get("path").String() != ""
		}
		return true
	})
	return c, nil
}

// plan is a batch hook's work, sorted by where it can be done.
type plan struct {
	hookIndex int
	links     []hook.Link // into the rootfs
	folders   []string    // update-ldcache
	devLinks  map[string][]hook.Link
	chmods    []chmod
}

type chmod struct {
	mode  os.FileMode
	paths []string
}

// Fold does spec's nvbind-hook batch hook now, in c's rootfs,
// and removes it from spec. It reports whether it did; why says why not
// (empty when the spec has no such hook).
func Fold(spec *rspec.Spec, c Container, o Options) (folded bool, why string) {
	p, why := parse(spec, o.HookPath)
	if p == nil {
		return false, why
	}
	if why := eligible(c, o); why != "" {
		return false, why
	}
	rootfs := c.Root
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(c.Bundle, rootfs)
	}
	if st, err := os.Stat(rootfs); err != nil || !st.IsDir() {
		return false, "the rootfs is not a directory"
	}
	v := &view{rootfs: rootfs, resolved: map[string]string{}, missing: map[string]bool{}}
	pending, why := v.check(spec, c, p)
	if why != "" {
		return false, why
	}
	root, err := hook.OpenRoot(rootfs)
	if err != nil {
		return false, err.Error()
	}
	defer root.Close()
	h := &hook.Hook{Root: root, Warn: o.Warn, Pending: pending}
	if len(p.links) > 0 {
		if err := h.CreateSymlinks(p.links); err != nil {
			return false, fmt.Sprintf("create-symlinks: %v", err)
		}
	}
	if len(p.folders) > 0 {
		if err := h.UpdateLDCache(p.folders); err != nil {
			return false, fmt.Sprintf("update-ldcache: %v", err)
		}
	}
	var mounts []rspec.Mount
	for _, dir := range slices.Sorted(maps.Keys(p.devLinks)) {
		src, err := linkFolder(o.LinkDir, p.devLinks[dir])
		if err != nil {
			return false, fmt.Sprintf("links in %s: %v", dir, err)
		}
		// rprivate, as the spec's driver mounts: no mount event crosses
		// between the host's folder and the container's.
		mounts = append(mounts, rspec.Mount{Destination: dir, Type: "bind", Source: src,
			Options: []string{"rbind", "ro", "nosuid", "noexec", "nodev", "rprivate"}})
	}
	spec.Mounts = append(spec.Mounts, mounts...)
	hooks := spec.Hooks.CreateContainer
	spec.Hooks.CreateContainer = slices.Delete(slices.Clone(hooks), p.hookIndex, p.hookIndex+1)
	if len(spec.Hooks.CreateContainer) == 0 {
		spec.Hooks.CreateContainer = nil
	}
	return true, ""
}

// DropLinkMounts removes the mounts of shared link folders under linkDir
// that an earlier Fold added to spec (a bundle created again with the
// spec nvbind-runtime rewrote): its injection brought the hook back, and
// Fold or the hook makes the links anew.
func DropLinkMounts(spec *rspec.Spec, linkDir string) {
	if linkDir == "" {
		return
	}
	spec.Mounts = slices.DeleteFunc(spec.Mounts, func(m rspec.Mount) bool {
		return oci.IsBind(m) && filepath.Dir(m.Source) == filepath.Clean(linkDir)
	})
}

// Runs reports whether spec has the batch hook nvbind's injection makes,
// the one Fold can do ahead of the runtime.
func Runs(spec *rspec.Spec, hookPath string) bool {
	return batchIndex(spec, hookPath) >= 0
}

// batchIndex is the place of that hook in the createContainer hooks (-1
// when none).
func batchIndex(spec *rspec.Spec, hookPath string) int {
	if spec.Hooks == nil || hookPath == "" {
		return -1
	}
	return slices.IndexFunc(spec.Hooks.CreateContainer, func(h rspec.Hook) bool {
		return h.Path == hookPath && len(h.Args) >= 2 && h.Args[0] == "nvbind-hook" && h.Args[1] == "batch"
	})
}

// parse finds the batch hook nvbind's injection made and reads its steps.
// Anything but the forms that injection writes leaves the hook alone.
func parse(spec *rspec.Spec, hookPath string) (*plan, string) {
	idx := batchIndex(spec, hookPath)
	if idx < 0 {
		return nil, ""
	}
	p := &plan{hookIndex: idx, devLinks: map[string][]hook.Link{}}
	args := spec.Hooks.CreateContainer[idx].Args[2:]
	for len(args) > 0 {
		end := slices.Index(args, "--and")
		if end < 0 {
			end = len(args)
		}
		if why := p.step(args[:end]); why != "" {
			return nil, why
		}
		args = args[min(end+1, len(args)):]
	}
	return p, ""
}

// step reads one step of a batch: its subcommand and --flag value pairs.
func (p *plan) step(args []string) string {
	if len(args) < 3 || len(args)%2 == 0 {
		return fmt.Sprintf("hook step %q is not in the form nvbind writes", strings.Join(args, " "))
	}
	sub, pairs := args[0], args[1:]
	var cm chmod
	modeSet := false
	for i := 0; i < len(pairs); i += 2 {
		flag, val := pairs[i], pairs[i+1]
		switch {
		case sub == "create-symlinks" && flag == "--link":
			l, err := hook.ParseLink(val)
			if err != nil {
				return err.Error()
			}
			if dir := path.Dir(l.Path); strings.HasPrefix(l.Path, "/dev/") {
				p.devLinks[dir] = append(p.devLinks[dir], l)
			} else {
				p.links = append(p.links, l)
			}
		case sub == "update-ldcache" && flag == "--folder":
			f, err := hook.ContainerPath(val)
			if err != nil {
				return err.Error()
			}
			p.folders = append(p.folders, f)
		case sub == "chmod" && flag == "--mode" && !modeSet:
			m, err := hook.ParseMode(val)
			if err != nil {
				return err.Error()
			}
			cm.mode, modeSet = m, true
		case sub == "chmod" && flag == "--path":
			f, err := hook.ContainerPath(val)
			if err != nil {
				return err.Error()
			}
			cm.paths = append(cm.paths, f)
		default:
			return fmt.Sprintf("hook step %s %s is not one nvbind-runtime can do ahead of runc", sub, flag)
		}
	}
	if sub == "chmod" {
		if !modeSet || len(cm.paths) == 0 {
			return "chmod step without --mode or --path"
		}
		p.chmods = append(p.chmods, cm)
	}
	return ""
}

// eligible says why the container's own settings keep the hook ("" when
// none do).
func eligible(c Container, o Options) string {
	switch {
	case !o.Runc:
		return "the low-level runtime is not runc"
	case os.Geteuid() != 0:
		return "not running as root"
	case c.Root == "":
		return "the spec has no root"
	case c.UserNS:
		// Files made in the rootfs would belong to the host's root, not
		// the container's.
		return "the container has a user namespace"
	case c.JoinsMountNS:
		return "the container joins an existing mount namespace"
	}
	return ""
}

// view resolves container paths as runc resolves mount destinations:
// inside the rootfs (securejoin), symlinks of the image followed.
type view struct {
	rootfs   string
	resolved map[string]string
	missing  map[string]bool // resolved paths found missing (or not a folder's entry)
}

// real is p (a clean container path) once the image's symlinks are
// followed. Components are looked at one by one, each folder once for all
// the paths below it; a symlink is left to securejoin, which resolves it
// inside the rootfs as runc does.
func (v *view) real(p string) (string, error) {
	if p == "/" {
		return p, nil
	}
	if r, ok := v.resolved[p]; ok {
		return r, nil
	}
	parent, err := v.real(path.Dir(p))
	if err != nil {
		return "", err
	}
	r := path.Join(parent, path.Base(p))
	if v.missing[parent] {
		// Below a missing folder: missing too, no need to look.
		v.missing[r] = true
	} else {
		var st unix.Stat_t
		err := unix.Lstat(v.rootfs+r, &st)
		switch {
		case err != nil:
			v.missing[r] = true
		case st.Mode&unix.S_IFMT == unix.S_IFLNK:
			if r, err = v.follow(p); err != nil {
				return "", err
			}
		}
	}
	// Missing (or under a file): the rest of the path is taken as written,
	// as securejoin and runc take it.
	v.resolved[p] = r
	return r, nil
}

// follow resolves p with securejoin.
func (v *view) follow(p string) (string, error) {
	joined, err := securejoin.SecureJoin(v.rootfs, p)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(v.rootfs, joined)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s resolves outside the rootfs", p)
	}
	return path.Clean("/" + filepath.ToSlash(rel)), nil
}

// under reports whether p is dir or below it.
func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// check compares the hook's work with what runc will do to the rootfs
// after it, and returns the files runc will bind-mount into the ld cache's
// folders (container path -> host path). why is set when the hook's view
// and the rootfs would differ.
func (v *view) check(spec *rspec.Spec, c Container, p *plan) (map[string]string, string) {
	folders := map[string][]string{} // real folder -> the hook's names for it
	var written []string             // real container paths the rootfs work writes or lists
	for _, f := range p.folders {
		r, err := v.real(f)
		if err != nil {
			return nil, err.Error()
		}
		folders[r] = append(folders[r], f)
		written = append(written, r)
	}
	if len(p.folders) > 0 {
		// The cache replaces whatever is at /etc/ld.so.cache, a link too.
		etc, err := v.real("/etc")
		if err != nil {
			return nil, err.Error()
		}
		written = append(written, path.Join(etc, "ld.so.cache"))
	}
	for _, l := range p.links {
		dir, err := v.real(path.Dir(l.Path))
		if err != nil {
			return nil, err.Error()
		}
		written = append(written, path.Join(dir, path.Base(l.Path)))
	}

	pending := map[string]string{}
	devTmpfs := false
	for _, m := range spec.Mounts {
		dest, err := hook.ContainerPath(m.Destination)
		if err != nil {
			return nil, err.Error()
		}
		if dest == "/dev" && m.Type == "tmpfs" {
			devTmpfs = true
		}
		r, err := v.real(dest)
		if err != nil {
			return nil, err.Error()
		}
		for _, w := range written {
			if under(w, r) {
				return nil, fmt.Sprintf("mount %s covers %s, which the hook writes", dest, w)
			}
		}
		if names := folders[path.Dir(r)]; names != nil {
			// A file mounted into a library folder: the ld cache lists
			// it, read from the host, as the hook would see it.
			parent, _ := v.real(path.Dir(dest))
			if r != path.Join(parent, path.Base(dest)) {
				return nil, fmt.Sprintf("mount %s lands on a symlink of the image", dest)
			}
			if !oci.IsBind(m) {
				return nil, fmt.Sprintf("mount %s in a library folder is not a bind mount", dest)
			}
			for _, f := range names {
				pending[path.Join(f, path.Base(r))] = m.Source
			}
		}
	}

	if len(p.devLinks) > 0 || len(p.chmods) > 0 {
		if c.MountLabel != "" {
			// The shared link folder carries the host's label, which an
			// SELinux container type may not read.
			return nil, "the container has an SELinux mount label"
		}
		if !devTmpfs {
			return nil, "/dev is not a fresh tmpfs"
		}
		if r, err := v.real("/dev"); err != nil || r != "/dev" {
			return nil, "/dev is a symlink in the image"
		}
	}
	for dir := range p.devLinks {
		if dir == "/dev" {
			return nil, "a link directly in /dev"
		}
		for _, m := range spec.Mounts {
			if d := path.Clean(m.Destination); d != "/dev" && (under(d, dir) || under(dir, d)) {
				return nil, fmt.Sprintf("mount %s meets link folder %s", d, dir)
			}
		}
		if spec.Linux != nil {
			for _, d := range spec.Linux.Devices {
				if under(path.Clean(d.Path), dir) {
					return nil, fmt.Sprintf("device %s is in link folder %s", d.Path, dir)
				}
			}
		}
	}
	if why := checkChmods(spec, p); why != "" {
		return nil, why
	}
	return pending, ""
}

// checkChmods accepts a chmod of a /dev folder that runc makes, fresh, as
// the parent of a device node or mount point with mode 0755 less the
// umask it inherits: the chmod then changes nothing.
func checkChmods(spec *rspec.Spec, p *plan) string {
	if len(p.chmods) == 0 {
		return ""
	}
	umask := unix.Umask(0)
	unix.Umask(umask)
	made := os.FileMode(0o755) &^ os.FileMode(umask)
	var children []string
	if spec.Linux != nil {
		for _, d := range spec.Linux.Devices {
			children = append(children, path.Clean(d.Path))
		}
	}
	for dir := range p.devLinks {
		children = append(children, dir)
	}
	for _, c := range p.chmods {
		for _, target := range c.paths {
			if c.mode != made {
				return fmt.Sprintf("chmod %o %s: runc makes it %o", c.mode, target, made)
			}
			if !strings.HasPrefix(target, "/dev/") {
				return fmt.Sprintf("chmod of %s, outside /dev", target)
			}
			if !slices.ContainsFunc(children, func(ch string) bool { return strings.HasPrefix(ch, target+"/") }) {
				return fmt.Sprintf("chmod of %s, which runc does not make", target)
			}
			for _, m := range spec.Mounts {
				if path.Clean(m.Destination) == target {
					return fmt.Sprintf("chmod of mount point %s", target)
				}
			}
		}
	}
	return ""
}

// linkFolder returns a host folder holding exactly links (by their base
// names), made once per distinct set under linkDir and shared by every
// container that gets the same set: its name is a digest of the links.
func linkFolder(linkDir string, links []hook.Link) (string, error) {
	if linkDir == "" {
		return "", errors.New("no folder for shared links")
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Path < links[j].Path })
	sum := sha256.New()
	for _, l := range links {
		fmt.Fprintf(sum, "%s\x00%s\x00", path.Base(l.Path), l.Target)
	}
	name := hex.EncodeToString(sum.Sum(nil))[:32]
	final := filepath.Join(linkDir, name)
	if st, err := os.Lstat(final); err == nil && st.IsDir() {
		return final, nil
	}
	if err := os.MkdirAll(linkDir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(linkDir, ".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // left only when the rename did not happen
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	for _, l := range links {
		if err := os.Symlink(l.Target, filepath.Join(tmp, path.Base(l.Path))); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another create made the same folder first: the same links.
		if st, serr := os.Lstat(final); serr == nil && st.IsDir() {
			return final, nil
		}
		return "", err
	}
	return final, nil
}
