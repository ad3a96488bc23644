package hook

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/nvbind/nvbind/internal/ldcache"
	"golang.org/x/sys/unix"
)

// ldCachePath is where the container's dynamic loader reads its cache.
const ldCachePath = "/etc/ld.so.cache"

// maxFolderEntries bounds how many names one folder listing may hold.
const maxFolderEntries = 1 << 16

// UpdateLDCache makes the container's /etc/ld.so.cache list every library
// in folders (container paths), ahead of what the image's own cache holds,
// as `ldconfig DIR...` in the container would. It never runs a program: the
// SONAMEs are read from the ELF files through handles resolved inside the
// rootfs and the cache is written in Go. Like ldconfig it also makes a
// missing SONAME link (libcuda.so.1 -> libcuda.so.580.95.05) in the folder.
//
// The image's existing cache is kept, less the entries the folders
// replace, so the loader finds the image's libraries exactly as before and
// the injected ones first. A missing folder is skipped with a warning.
func (h *Hook) UpdateLDCache(folders []string) error {
	clean := make([]string, 0, len(folders))
	for _, f := range folders {
		p, err := ContainerPath(f)
		if err != nil {
			return fmt.Errorf("folder: %w", err)
		}
		clean = append(clean, p)
	}
	// Read every folder before changing anything, so that a folder that
	// cannot be read leaves the rootfs as it was.
	var scans []*folderScan
	defer func() {
		for _, s := range scans {
			s.handle.Close()
		}
	}()
	for _, dir := range clean {
		s, err := h.scanFolder(dir)
		if err != nil {
			return fmt.Errorf("folder %s: %w", dir, err)
		}
		if s != nil {
			scans = append(scans, s)
		}
	}
	var ours []ldcache.Entry
	for _, s := range scans {
		ours = append(ours, h.linkFolder(s)...)
	}

	replaced := map[string]bool{}
	for _, e := range ours {
		replaced[replacedKey(e)] = true
	}
	merged := ours
	data, err := h.Root.readFile(ldCachePath, ldcache.MaxSize)
	switch {
	case err == nil:
		old, perr := ldcache.Parse(data)
		if perr != nil {
			h.warnf("ignoring the image's %s: %v", ldCachePath, perr)
		}
		for _, e := range old {
			if !replaced[replacedKey(e)] && ldcache.SortableKey(e.Key) {
				merged = append(merged, e)
			}
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		h.warnf("ignoring the image's %s: %v", ldCachePath, err)
	}
	if len(merged) > ldcache.MaxEntries {
		return fmt.Errorf("%d cache entries is more than the %d allowed", len(merged), ldcache.MaxEntries)
	}
	if _, err := h.Root.writeFile(ldCachePath, ldcache.Encode(merged, cacheGenerator), 0o644); err != nil {
		return err
	}
	return nil
}

// replacedKey identifies the entries of the image's cache that an injected
// library supersedes: same SONAME for the same kind of loader.
func replacedKey(e ldcache.Entry) string { return fmt.Sprintf("%s\x00%d", e.Key, e.Flags) }

// candidate is one library file found in a folder.
type candidate struct {
	name   string
	isLink bool
	lib    library
}

// folderScan is what one folder holds, read before anything is changed.
type folderScan struct {
	dir    string   // clean container path
	handle *os.File // the folder, resolved inside the root, for *at calls
	keys   []string // cache keys in the order found
	byKey  map[string][]candidate
	byName map[string]candidate
	// listed holds every name the folder held when read, and the files
	// the runtime will mount there, with their getdents types.
	listed map[string]uint8
	// linkTarget holds the targets of the library links read, so that
	// making the SONAME links does not read them again.
	linkTarget map[string]string
}

// scanFolder reads the libraries in dir (a clean container path). It
// returns nil, with a warning, when dir does not exist; the caller closes
// the returned handle.
func (h *Hook) scanFolder(dir string) (_ *folderScan, err error) {
	pending := h.pendingIn(dir)
	df, err := h.Root.openDir(dir)
	if errors.Is(err, fs.ErrNotExist) && len(pending) > 0 {
		// The runtime makes the folder for its mounts; make it now.
		df, err = h.Root.mkdirAll(dir)
	}
	if errors.Is(err, fs.ErrNotExist) {
		h.warnf("skipping folder %s: it does not exist in the container", dir)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			df.Close()
		}
	}()
	dfd := int(df.Fd())
	ents, err := readDirents(dfd, maxFolderEntries)
	if err != nil {
		return nil, err
	}
	s := &folderScan{dir: dir, handle: df, byKey: map[string][]candidate{}, byName: map[string]candidate{},
		listed: make(map[string]uint8, len(ents)+len(pending)), linkTarget: map[string]string{}}
	for _, e := range ents {
		s.listed[e.name] = e.typ
	}
	for _, name := range pending {
		// The mount shows the host file, links followed (inspect skips
		// it unless it is a regular file).
		s.listed[name] = unix.DT_REG
	}
	names := slices.Sorted(maps.Keys(s.listed))
	// Regular files first, then links: a link to a file of the same
	// folder (libcuda.so.1 -> libcuda.so.580.95.05) reuses what that file's
	// ELF header said instead of resolving and reading it again.
	type entry struct {
		name   string
		isLink bool
	}
	var files, links []entry
	for _, name := range names {
		if !isLibraryName(name) {
			continue
		}
		typ := s.listed[name]
		if typ == unix.DT_UNKNOWN {
			var st unix.Stat_t
			if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				continue
			}
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFLNK:
				typ = unix.DT_LNK
			case unix.S_IFREG:
				typ = unix.DT_REG
			}
		}
		switch typ {
		case unix.DT_LNK:
			links = append(links, entry{name, true})
		case unix.DT_REG:
			files = append(files, entry{name, false})
		}
	}
	inspected := map[string]library{}
	for _, e := range append(files, links...) {
		name, isLink := e.name, e.isLink
		var lib library
		var err error
		target := ""
		if isLink {
			target, _, _ = readlinkat(dfd, name)
			s.linkTarget[name] = target
		}
		if known, ok := inspected[target]; isLink && ok && !strings.Contains(target, "/") {
			lib = known
		} else if lib, err = h.inspect(path.Join(dir, name)); err != nil {
			continue // not a library (a linker script, a dangling link): ldconfig skips it too
		}
		if !isLink {
			inspected[name] = lib
		}
		key := lib.soname
		if key == "" {
			key = name
		}
		if isLink && isDevLink(name, key) {
			key = name // libcuda.so -> libcuda.so.1 gets its own entry, as ldconfig gives it
		}
		if !validSONAME(key) {
			h.warnf("skipping %s: unusable SONAME %q", path.Join(dir, name), key)
			continue
		}
		c := candidate{name: name, isLink: isLink, lib: lib}
		s.byName[name] = c
		if _, ok := s.byKey[key]; !ok {
			s.keys = append(s.keys, key)
		}
		s.byKey[key] = append(s.byKey[key], c)
	}
	return s, nil
}

// linkFolder makes the folder's missing SONAME links and returns its
// cache entries.
func (h *Hook) linkFolder(s *folderScan) []ldcache.Entry {
	var entries []ldcache.Entry
	for _, key := range s.keys {
		lib, err := h.ensureSONAMELink(int(s.handle.Fd()), s, key)
		if err != nil {
			h.warnf("skipping %s: %v", path.Join(s.dir, key), err)
			continue
		}
		entries = append(entries, ldcache.Entry{Key: key, Value: path.Join(s.dir, key), Flags: lib.flags})
	}
	return entries
}

// ensureSONAMELink makes dir/key name the newest regular file among cands,
// as ldconfig does: it creates the link when key is missing or a dangling
// link, and repoints a link that names another file. A regular file at key
// is left alone. It returns the library that dir/key now resolves to.
func (h *Hook) ensureSONAMELink(dfd int, s *folderScan, key string) (library, error) {
	dir, cands, byName := s.dir, s.byKey[key], s.byName
	var newest *candidate
	for i, c := range cands {
		if !c.isLink && (newest == nil || ldcache.Libcmp(c.name, newest.name) > 0) {
			newest = &cands[i]
		}
	}
	if _, ok := s.listed[key]; !ok && newest != nil && newest.name != key {
		// Not there when the folder was read: make the link, and look
		// closer only if something made the name since.
		err := unix.Symlinkat(newest.name, dfd, key)
		if err == nil {
			return newest.lib, nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return library{}, fmt.Errorf("link to %s: %w", newest.name, err)
		}
	}
	var target string
	var isLink, exists bool
	var err error
	if _, ok := h.Pending[path.Join(dir, key)]; ok {
		// The runtime mounts a file there.
		exists = true
	} else if t, ok := s.linkTarget[key]; ok {
		target, isLink, exists = t, true, true
	} else {
		target, isLink, err = readlinkat(dfd, key)
		exists = err == nil
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return library{}, err
	}
	if newest != nil && newest.name != key && (!exists || isLink && target != newest.name) {
		if !exists {
			err = unix.Symlinkat(newest.name, dfd, key)
		} else {
			err = replaceSymlink(dfd, key, newest.name)
		}
		if err != nil {
			return library{}, fmt.Errorf("link to %s: %w", newest.name, err)
		}
		return newest.lib, nil
	}
	if c, ok := byName[key]; ok {
		return c.lib, nil
	}
	// key is not a scanned library file (its name does not look like one);
	// take what it resolves to inside the root.
	return h.inspect(path.Join(dir, key))
}

// inspect reads the library at p (a container path), following symlinks
// inside the root only.
func (h *Hook) inspect(p string) (library, error) {
	if host, ok := h.Pending[p]; ok {
		return inspectHostFile(host)
	}
	fd, err := h.Root.openRegularFD(p)
	if errors.Is(err, errNoOpenat2) {
		f, err := h.Root.openRegularSlow(p)
		if err != nil {
			return library{}, notLibrary(err)
		}
		defer f.Close()
		return inspectLibrary(f)
	}
	if err != nil {
		return library{}, notLibrary(err)
	}
	defer unix.Close(fd)
	return inspectLibrary(fdReader(fd))
}

// notLibrary makes "not a regular file" the "not a library" it means here.
func notLibrary(err error) error {
	if errors.Is(err, errNotRegular) {
		return errNotLibrary
	}
	return err
}

// inspectHostFile reads the library the runtime will mount from host, a
// path from a trusted CDI spec.
func inspectHostFile(host string) (library, error) {
	fd, err := unix.Open(host, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return library{}, &os.PathError{Op: "open", Path: host, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return library{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return library{}, errNotLibrary
	}
	return inspectLibrary(fdReader(fd))
}

// fdReader reads a file descriptor with pread: no os.File, whose set-up
// tries the poller on every library opened.
type fdReader int

func (r fdReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := unix.Pread(int(r), p, off)
	if err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// isLibraryName is ldconfig's filter: lib* or ld-* names containing ".so".
func isLibraryName(name string) bool {
	return (strings.HasPrefix(name, "lib") || strings.HasPrefix(name, "ld-")) && strings.Contains(name, ".so")
}

// isDevLink reports a link like libcuda.so for SONAME libcuda.so.1.
func isDevLink(name, soname string) bool {
	return name != soname && strings.HasSuffix(name, ".so") && strings.HasPrefix(soname, name)
}
