package gpu

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nvbind/nvbind/internal/ldcache"
)

// driverfiles.go finds the driver's user-space files under a driver root
// and groups them by driver capability, the unit NVIDIA_DRIVER_CAPABILITIES
// speaks in. Every path is resolved inside the root (symlinks included), so
// a driver root never leads outside itself.

// Capability is one NVIDIA driver capability.
type Capability string

// The driver capabilities.
const (
	CapUtility  Capability = "utility"
	CapCompute  Capability = "compute"
	CapGraphics Capability = "graphics"
	CapVideo    Capability = "video"
	CapDisplay  Capability = "display"
	CapNGX      Capability = "ngx"
	CapCompat32 Capability = "compat32"
)

// AllCapabilities in the order specs list them.
var AllCapabilities = []Capability{CapUtility, CapCompute, CapGraphics, CapVideo, CapDisplay, CapNGX, CapCompat32}

// driverLibraries are the driver libraries by file stem and capability
// (from the NVIDIA container toolkit's documented capability lists).
var driverLibraries = []struct {
	stem string
	cap  Capability
}{
	{"libnvidia-ml.so", CapUtility},
	{"libnvidia-cfg.so", CapUtility},

	{"libcuda.so", CapCompute},
	{"libcudadebugger.so", CapCompute},
	{"libnvidia-ptxjitcompiler.so", CapCompute},
	{"libnvidia-nvvm.so", CapCompute},
	{"libnvidia-opencl.so", CapCompute},
	{"libnvidia-gpucomp.so", CapCompute},
	{"libnvidia-allocator.so", CapCompute},
	{"libnvidia-pkcs11.so", CapCompute},
	{"libnvidia-pkcs11-openssl3.so", CapCompute},

	{"libnvcuvid.so", CapVideo},
	{"libnvidia-encode.so", CapVideo},
	{"libnvidia-opticalflow.so", CapVideo},
	{"libvdpau_nvidia.so", CapVideo},

	{"libGLX_nvidia.so", CapGraphics},
	{"libEGL_nvidia.so", CapGraphics},
	{"libGLESv2_nvidia.so", CapGraphics},
	{"libGLESv1_CM_nvidia.so", CapGraphics},
	{"libnvidia-glcore.so", CapGraphics},
	{"libnvidia-eglcore.so", CapGraphics},
	{"libnvidia-glsi.so", CapGraphics},
	{"libnvidia-tls.so", CapGraphics},
	{"libnvidia-rtcore.so", CapGraphics},
	{"libnvidia-glvkspirv.so", CapGraphics},
	{"libnvoptix.so", CapGraphics},
	{"libnvidia-fbc.so", CapGraphics},
	{"libnvidia-egl-gbm.so", CapGraphics},
	{"libnvidia-egl-wayland.so", CapGraphics},
	{"libnvidia-egl-xcb.so", CapGraphics},
	{"libnvidia-egl-xlib.so", CapGraphics},
	{"libnvidia-vksc-core.so", CapGraphics},

	{"libnvidia-ngx.so", CapNGX},
}

// driverBinaries by capability.
var driverBinaries = []struct {
	name string
	cap  Capability
}{
	{"nvidia-smi", CapUtility},
	{"nvidia-debugdump", CapUtility},
	{"nvidia-persistenced", CapUtility},
	{"nvidia-cuda-mps-control", CapCompute},
	{"nvidia-cuda-mps-server", CapCompute},
}

// ipcPaths are the driver daemons' sockets and the MPS pipe directory.
var ipcPaths = []struct {
	path string
	cap  Capability
}{
	{"/run/nvidia-persistenced/socket", CapUtility},
	{"/var/run/nvidia-persistenced/socket", CapUtility},
	{"/run/nvidia-fabricmanager/socket", CapCompute},
	{"/var/run/nvidia-fabricmanager/socket", CapCompute},
	{"/tmp/nvidia-mps", CapCompute},
}

// Library folders searched when the root has no ld.so.cache.
var (
	libDirs64 = []string{"/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib"}
	libDirs32 = []string{"/usr/lib/i386-linux-gnu", "/lib/i386-linux-gnu", "/usr/lib32", "/lib32", "/usr/lib", "/lib"}
)

// Link is a symlink to create in the container: Link points at Target
// (relative to Link's folder).
type Link struct {
	Target string
	Link   string
}

// FileSet is what one capability brings. Paths are as seen in the
// container; on the host they live under the driver root.
type FileSet struct {
	// Libraries are the driver's library files (mounted without noexec).
	Libraries []string
	// Files are other files: binaries (exec), firmware, ICD json (noexec).
	Binaries []string
	Files    []string
	// IPC are sockets and the MPS pipe directory.
	IPC []string
	// Links are the SONAME and other links the libraries need.
	Links []Link
	// Folders hold the libraries, for the container's ld cache.
	Folders []string
	// Nodes are device nodes (/dev/nvidia-modeset for display).
	Nodes []string
}

func (s *FileSet) empty() bool {
	return len(s.Libraries)+len(s.Binaries)+len(s.Files)+len(s.IPC)+len(s.Links)+len(s.Nodes) == 0
}

// DriverFiles are a driver's files under a root, by capability.
type DriverFiles struct {
	Root    string
	Version string
	Sets    map[Capability]*FileSet
}

// Set returns the files of one capability (never nil).
func (d *DriverFiles) Set(c Capability) *FileSet {
	if s := d.Sets[c]; s != nil {
		return s
	}
	return &FileSet{}
}

// FindDriverFiles finds the files of driver version under root: libraries
// through the root's etc/ld.so.cache (or, without one, the usual library
// folders), binaries, GSP firmware, IPC sockets, ICD files and X modules.
func FindDriverFiles(root, version string) (*DriverFiles, error) {
	f := &finder{root: cleanRoot(root), version: version, canon: map[string]string{}}
	d := &DriverFiles{Root: f.root, Version: version, Sets: map[Capability]*FileSet{}}
	for _, c := range AllCapabilities {
		d.Sets[c] = &FileSet{}
	}
	if err := f.loadCache(); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(f.root, "etc/ld.so.cache"), err)
	}
	f.libraries(d, false)
	f.libraries(d, true)
	f.binaries(d)
	f.firmware(d)
	f.ipc(d)
	f.graphics(d)
	f.eglPlatforms(d, f.driverLibDirs(d))
	f.display(d)
	f.ngx(d)
	for _, s := range d.Sets {
		sortSet(s)
	}
	return d, nil
}

type finder struct {
	root    string
	version string
	cache   []ldcache.Entry
	haveLDC bool
	canon   map[string]string // path in root -> canonical path in root ("" = missing)
}

func (f *finder) loadCache() error {
	data, err := os.ReadFile(filepath.Join(f.root, "etc/ld.so.cache"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	entries, err := ldcache.ParseAny(data)
	if err != nil {
		// A broken cache is not fatal: the folders are scanned instead.
		return nil
	}
	f.cache, f.haveLDC = entries, true
	return nil
}

// resolve returns p's canonical path inside the root, every symlink
// followed and read as if the root were "/" (an absolute target starts at
// the root, ".." stops at it), and whether it exists. Results are cached
// per path, so the folders shared by many files are resolved once.
func (f *finder) resolve(p string) (string, bool) {
	return f.resolveDepth(filepath.Clean("/"+p), 0)
}

func (f *finder) resolveDepth(p string, depth int) (string, bool) {
	if p == "/" {
		return "/", true
	}
	if c, ok := f.canon[p]; ok {
		return c, c != ""
	}
	c := ""
	if parent, ok := f.resolveDepth(filepath.Dir(p), depth); ok && depth <= 40 {
		cand := filepath.Join(parent, filepath.Base(p))
		if fi, err := os.Lstat(f.host(cand)); err == nil {
			if fi.Mode()&os.ModeSymlink == 0 {
				c = cand
			} else if target, err := os.Readlink(f.host(cand)); err == nil {
				if !filepath.IsAbs(target) {
					target = filepath.Join(parent, target)
				}
				c, _ = f.resolveDepth(filepath.Clean("/"+target), depth+1)
			}
		}
	}
	f.canon[p] = c
	return c, c != ""
}

// inRoot turns a host path under the root into the path in the root.
func (f *finder) inRoot(host string) string {
	if f.root == "/" {
		return host
	}
	rel, err := filepath.Rel(f.root, host)
	if err != nil {
		return host
	}
	return "/" + rel
}

func (f *finder) host(p string) string { return filepath.Join(f.root, p) }

// canonDir resolves p's folder but keeps its last element, so a link is
// named by where it really sits (/lib/x86_64-linux-gnu/libcuda.so.1 on a
// merged-/usr host is /usr/lib/x86_64-linux-gnu/libcuda.so.1).
func (f *finder) canonDir(p string) (string, bool) {
	dir, ok := f.resolve(filepath.Dir(p))
	if !ok {
		return "", false
	}
	return filepath.Join(dir, filepath.Base(p)), true
}

// libStem cuts a library name to its stem: libcuda.so.1 -> libcuda.so.
func libStem(name string) string {
	i := strings.Index(name, ".so")
	if i < 0 || (len(name) > i+3 && name[i+3] != '.') {
		return ""
	}
	return name[:i+3]
}

// libraries finds the 64-bit (or, with compat32, the 32-bit) libraries.
func (f *finder) libraries(d *DriverFiles, compat32 bool) {
	capOf := map[string]Capability{}
	for _, l := range driverLibraries {
		capOf[l.stem] = l.cap
	}
	cands := map[string][]string{} // stem -> candidate paths
	add := func(stem, p string) {
		if _, ok := capOf[stem]; ok {
			cands[stem] = append(cands[stem], p)
		}
	}
	if f.haveLDC {
		for _, e := range f.cache {
			if (compat32 && is32(e.Flags)) || (!compat32 && is64(e.Flags)) {
				add(libStem(e.Key), e.Value)
			}
		}
	} else {
		dirs := libDirs64
		if compat32 {
			dirs = libDirs32
		}
		f.eachEntry(dirs, func(asked, dir string, e os.DirEntry) {
			if stem := libStem(e.Name()); stem != "" && (asked != "/usr/lib" && asked != "/lib" || f.elfClass32(filepath.Join(dir, e.Name())) == compat32) {
				add(stem, filepath.Join(dir, e.Name()))
			}
		})
	}
	// vdpau drivers sit in a subfolder the ld cache does not list.
	if libs := cands["libcuda.so"]; len(libs) > 0 || len(cands["libnvidia-ml.so"]) > 0 {
		base := append(libs, cands["libnvidia-ml.so"]...)[0]
		if dir, ok := f.resolve(filepath.Join(filepath.Dir(base), "vdpau")); ok {
			ents, _ := os.ReadDir(f.host(dir))
			for _, e := range ents {
				add(libStem(e.Name()), filepath.Join(dir, e.Name()))
			}
		}
	}

	stems := make([]string, 0, len(cands))
	for s := range cands {
		stems = append(stems, s)
	}
	sort.Strings(stems)
	for _, stem := range stems {
		set := d.Sets[capOf[stem]]
		if compat32 {
			set = d.Sets[CapCompat32]
		}
		f.library(set, stem, cands[stem])
	}
	if !compat32 {
		// Own-versioned libraries that neither a link nor the ld cache
		// leads to: look beside the other driver libraries.
		for stem := range ownVersioned {
			set := d.Sets[capOf[stem]]
			if _, found := cands[stem]; found {
				continue
			}
			if real, ok := f.ownVersionFile(stem, f.driverLibDirs(d)); ok {
				f.addOwnVersioned(set, real)
			}
		}
	}
}

// driverLibDirs are the folders of the driver's 64-bit libraries found so
// far, then the usual library folders.
func (f *finder) driverLibDirs(d *DriverFiles) []string {
	var dirs []string
	for _, c := range []Capability{CapUtility, CapCompute, CapGraphics, CapVideo} {
		for _, dir := range d.Sets[c].Folders {
			dirs = appendUnique(dirs, dir)
		}
	}
	for _, dir := range libDirs64 {
		dirs = appendUnique(dirs, dir)
	}
	return dirs
}

// library picks the files to mount among a stem's candidates (the real
// files that a link points at or that carry the driver version) and the
// links to recreate for them. A library with a version of its own is
// taken at that version when no link leads to it.
func (f *finder) library(set *FileSet, stem string, cands []string) {
	type entry struct{ path, real string }
	var links []entry
	keep := map[string]bool{}
	seen := map[string]bool{}
	for _, p := range cands {
		named, ok := f.canonDir(p)
		if !ok || seen[named] {
			continue
		}
		seen[named] = true
		real, ok := f.resolve(p)
		if !ok {
			continue
		}
		if real != named {
			links = append(links, entry{named, real})
			keep[real] = true
		} else if strings.HasSuffix(real, ".so."+f.version) {
			keep[real] = true
		}
	}
	if len(keep) == 0 && ownVersioned[stem] {
		var dirs []string
		for _, p := range cands {
			dirs = appendUnique(dirs, filepath.Dir(p))
		}
		if real, ok := f.ownVersionFile(stem, dirs); ok {
			f.addOwnVersioned(set, real)
		}
		return
	}
	for real := range keep {
		set.Libraries = append(set.Libraries, real)
		if dir := filepath.Dir(real); filepath.Base(dir) != "vdpau" {
			set.Folders = appendUnique(set.Folders, dir)
		}
	}
	for _, l := range links {
		rel, err := filepath.Rel(filepath.Dir(l.path), l.real)
		if err != nil {
			continue
		}
		set.Links = append(set.Links, Link{Target: rel, Link: l.path})
	}
}

// elfClass32 reports whether a library is a 32-bit ELF file, for folders
// (/usr/lib) that hold 64-bit libraries on some distributions and 32-bit
// ones on others.
func (f *finder) elfClass32(p string) bool {
	fh, err := os.Open(f.host(p))
	if err != nil {
		return false
	}
	defer fh.Close()
	var ident [elf.EI_NIDENT]byte
	if _, err := fh.ReadAt(ident[:], 0); err != nil {
		return false
	}
	return string(ident[:4]) == elf.ELFMAG && elf.Class(ident[elf.EI_CLASS]) == elf.ELFCLASS32
}

func (f *finder) binaries(d *DriverFiles) {
	for _, b := range driverBinaries {
		for _, dir := range []string{"/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"} {
			if p, ok := f.resolve(filepath.Join(dir, b.name)); ok {
				d.Sets[b.cap].Binaries = appendUnique(d.Sets[b.cap].Binaries, p)
				break
			}
		}
	}
}

// firmware finds the GSP firmware of this driver version.
func (f *finder) firmware(d *DriverFiles) {
	for _, dir := range []string{"/lib/firmware/nvidia", "/usr/lib/firmware/nvidia"} {
		c, ok := f.resolve(filepath.Join(dir, f.version))
		if !ok {
			continue
		}
		ents, _ := os.ReadDir(f.host(c))
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".bin") {
				d.Sets[CapUtility].Files = appendUnique(d.Sets[CapUtility].Files, filepath.Join(c, e.Name()))
			}
		}
	}
}

func (f *finder) ipc(d *DriverFiles) {
	for _, s := range ipcPaths {
		if p, ok := f.resolve(s.path); ok {
			d.Sets[s.cap].IPC = appendUnique(d.Sets[s.cap].IPC, p)
		}
	}
}

// graphics finds the ICD and platform json files, the application
// profiles and the links GLVND and GBM look for.
func (f *finder) graphics(d *DriverFiles) {
	g := d.Sets[CapGraphics]
	for _, dir := range []string{
		"/etc/vulkan/icd.d", "/usr/share/vulkan/icd.d",
		"/etc/vulkan/implicit_layer.d", "/usr/share/vulkan/implicit_layer.d",
		"/etc/glvnd/egl_vendor.d", "/usr/share/glvnd/egl_vendor.d",
		"/etc/egl/egl_external_platform.d", "/usr/share/egl/egl_external_platform.d",
	} {
		c, ok := f.resolve(dir)
		if !ok {
			continue
		}
		ents, _ := os.ReadDir(f.host(c))
		for _, e := range ents {
			if n := e.Name(); strings.Contains(n, "nvidia") && strings.HasSuffix(n, ".json") {
				g.Files = appendUnique(g.Files, filepath.Join(c, n))
			}
		}
	}
	if p, ok := f.resolve("/usr/share/nvidia/nvidia-application-profiles-" + f.version + "-rc"); ok {
		g.Files = appendUnique(g.Files, p)
	}
	for _, lib := range g.Libraries {
		dir := filepath.Dir(lib)
		switch {
		case strings.HasPrefix(filepath.Base(lib), "libGLX_nvidia.so."):
			g.Links = append(g.Links, Link{Target: "libGLX_nvidia.so.0", Link: filepath.Join(dir, "libGLX_indirect.so.0")})
		}
	}
	for _, lib := range d.Sets[CapCompute].Libraries {
		if strings.HasPrefix(filepath.Base(lib), "libnvidia-allocator.so.") {
			dir := filepath.Dir(lib)
			g.Links = append(g.Links, Link{Target: "../libnvidia-allocator.so.1", Link: filepath.Join(dir, "gbm/nvidia-drm_gbm.so")})
		}
	}
}

// ngx adds NGX's Windows DLLs (for Proton) that sit beside its library.
func (f *finder) ngx(d *DriverFiles) {
	s := d.Sets[CapNGX]
	for _, lib := range s.Libraries {
		c, ok := f.resolve(filepath.Join(filepath.Dir(lib), "nvidia/wine"))
		if !ok {
			continue
		}
		ents, _ := os.ReadDir(f.host(c))
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".dll") {
				s.Files = appendUnique(s.Files, filepath.Join(c, e.Name()))
			}
		}
	}
}

// display finds the X driver modules and the modeset node.
func (f *finder) display(d *DriverFiles) {
	s := d.Sets[CapDisplay]
	for _, dir := range []string{"/usr/lib/xorg/modules", "/usr/lib64/xorg/modules", "/usr/lib/x86_64-linux-gnu/nvidia/xorg"} {
		for _, name := range []string{"drivers/nvidia_drv.so", "nvidia_drv.so", "extensions/libglxserver_nvidia.so." + f.version, "libglxserver_nvidia.so." + f.version} {
			if p, ok := f.resolve(filepath.Join(dir, name)); ok {
				s.Libraries = appendUnique(s.Libraries, p)
				if strings.Contains(name, "libglxserver_nvidia") {
					s.Links = append(s.Links, Link{Target: filepath.Base(p), Link: filepath.Join(filepath.Dir(p), "libglxserver_nvidia.so")})
				}
			}
		}
	}
	if _, err := os.Stat(filepath.Join(devRoot(f.root), "dev/nvidia-modeset")); err == nil {
		s.Nodes = append(s.Nodes, "/dev/nvidia-modeset")
	}
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func sortSet(s *FileSet) {
	sort.Strings(s.Libraries)
	sort.Strings(s.Binaries)
	sort.Strings(s.Files)
	sort.Strings(s.IPC)
	sort.Strings(s.Folders)
	sort.Strings(s.Nodes)
	sort.Slice(s.Links, func(i, j int) bool { return s.Links[i].Link < s.Links[j].Link })
	// Drop duplicate links (the same link found through two names).
	out := s.Links[:0]
	for i, l := range s.Links {
		if i == 0 || l.Link != s.Links[i-1].Link {
			out = append(out, l)
		}
	}
	s.Links = out
}

// FindLibrary returns the host path of a native library (by SONAME, e.g.
// libnvidia-ml.so.1) under root, through the root's ld.so.cache or the
// usual library folders, resolved inside the root.
func FindLibrary(root, soname string) (string, bool) {
	f := &finder{root: cleanRoot(root), canon: map[string]string{}}
	_ = f.loadCache()
	var cands []string
	for _, e := range f.cache {
		if e.Key == soname && is64(e.Flags) {
			cands = append(cands, e.Value)
		}
	}
	for _, dir := range append(append([]string(nil), libDirs64...), WSLLibDir) {
		cands = append(cands, filepath.Join(dir, soname))
	}
	for _, p := range cands {
		if c, ok := f.resolve(p); ok {
			return f.host(c), true
		}
	}
	return "", false
}

// eachEntry calls fn for every entry of dirs (paths in the root), each
// folder once however many of dirs lead to it: asked is the dir as given,
// dir where it resolved.
func (f *finder) eachEntry(dirs []string, fn func(asked, dir string, e os.DirEntry)) {
	seen := map[string]bool{}
	for _, asked := range dirs {
		dir, ok := f.resolve(asked)
		if !ok || seen[dir] {
			continue
		}
		seen[dir] = true
		ents, _ := os.ReadDir(f.host(dir))
		for _, e := range ents {
			fn(asked, dir, e)
		}
	}
}
