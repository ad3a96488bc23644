package gpu

import (
	"debug/elf"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tidwall/gjson"
)

// ownversion.go finds the driver libraries that carry a version of their
// own (libnvidia-egl-gbm.so.1.1.2, -egl-wayland.so.1.1.19, -egl-xcb,
// -egl-xlib: NVIDIA's EGL platform libraries) where no SONAME link points
// at them, and the EGL external platform libraries that the
// egl_external_platform.d JSON files name, as NVIDIA's nvidia-ctk does.
// Wayland and GBM programs need them.

// ownVersioned are the driver libraries versioned apart from the driver.
var ownVersioned = map[string]bool{
	"libnvidia-egl-gbm.so": true, "libnvidia-egl-wayland.so": true,
	"libnvidia-egl-xcb.so": true, "libnvidia-egl-xlib.so": true,
}

// ownVersionFile finds stem's own-versioned file (stem + ".N[.N...]") in
// dirs (paths in the root), the highest version when there are several.
func (f *finder) ownVersionFile(stem string, dirs []string) (string, bool) {
	var found []string
	f.eachEntry(dirs, func(_, dir string, e os.DirEntry) {
		if v, ok := strings.CutPrefix(e.Name(), stem+"."); ok && isDottedNumber(v) {
			if real, ok := f.resolve(filepath.Join(dir, e.Name())); ok {
				found = append(found, real)
			}
		}
	})
	if len(found) == 0 {
		return "", false
	}
	sort.Slice(found, func(i, j int) bool {
		a := strings.TrimPrefix(filepath.Base(found[i]), stem+".")
		b := strings.TrimPrefix(filepath.Base(found[j]), stem+".")
		c, err := compareVersions(a, b)
		return err == nil && c > 0
	})
	return found[0], true
}

func isDottedNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, p := range strings.Split(s, ".") {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// soname is a library's DT_SONAME ("" when it has none or is unreadable).
func (f *finder) soname(p string) string {
	e, err := elf.Open(f.host(p))
	if err != nil {
		return ""
	}
	defer e.Close()
	names, err := e.DynString(elf.DT_SONAME)
	if err != nil || len(names) == 0 {
		return ""
	}
	return names[0]
}

// addOwnVersioned adds real (an own-versioned library) to set, with the
// link its SONAME needs.
func (f *finder) addOwnVersioned(set *FileSet, real string) {
	set.Libraries = appendUnique(set.Libraries, real)
	set.Folders = appendUnique(set.Folders, filepath.Dir(real))
	if so := f.soname(real); so != "" && so != filepath.Base(real) && !strings.Contains(so, "/") {
		set.Links = append(set.Links, Link{Target: filepath.Base(real), Link: filepath.Join(filepath.Dir(real), so)})
	}
}

// eglPlatforms adds the libraries the EGL external platform JSON files of
// the graphics set name (ICD.library_path) that are not in it yet.
func (f *finder) eglPlatforms(d *DriverFiles, dirs []string) {
	g := d.Sets[CapGraphics]
	have := map[string]bool{}
	for _, l := range g.Libraries {
		have[filepath.Base(l)] = true
	}
	for _, l := range g.Links {
		have[filepath.Base(l.Link)] = true
	}
	for _, file := range append([]string(nil), g.Files...) {
		if !strings.Contains(file, "/egl_external_platform.d/") {
			continue
		}
		data, err := os.ReadFile(f.host(file))
		if err != nil {
			continue
		}
		lib := gjson.GetBytes(data, "ICD.library_path").String()
		if lib == "" || have[filepath.Base(lib)] {
			continue
		}
		have[filepath.Base(lib)] = true
		if filepath.IsAbs(lib) {
			if real, ok := f.resolve(lib); ok {
				g.Libraries = appendUnique(g.Libraries, real)
				g.Folders = appendUnique(g.Folders, filepath.Dir(real))
			}
			continue
		}
		if real, ok := f.findIn(lib, dirs); ok {
			g.Libraries = appendUnique(g.Libraries, real)
			g.Folders = appendUnique(g.Folders, filepath.Dir(real))
			if named, ok := f.canonDir(filepath.Join(filepath.Dir(real), lib)); ok && filepath.Base(real) != lib {
				g.Links = append(g.Links, Link{Target: filepath.Base(real), Link: named})
			}
			continue
		}
		// Only the versioned file (lib + ".N..."), without the link.
		if real, ok := f.ownVersionFile(lib, dirs); ok {
			g.Libraries = appendUnique(g.Libraries, real)
			g.Folders = appendUnique(g.Folders, filepath.Dir(real))
			g.Links = append(g.Links, Link{Target: filepath.Base(real), Link: filepath.Join(filepath.Dir(real), lib)})
		}
	}
}

// findIn resolves name in the first of dirs that has it.
func (f *finder) findIn(name string, dirs []string) (string, bool) {
	for _, dir := range dirs {
		if real, ok := f.resolve(filepath.Join(dir, name)); ok {
			return real, true
		}
	}
	return "", false
}
