package gpu

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"tags.cncf.io/container-device-interface/pkg/cdi"
)

// SpecInfo describes one CDI spec file of kind nvidia.com/gpu.
type SpecInfo struct {
	Path string `json:"path"`
	// DriverVersion recorded in the spec ("" for a spec nvbind did not make).
	DriverVersion string `json:"driverVersion,omitempty"`
	// Fresh: made by nvbind for the running driver.
	Fresh   bool     `json:"fresh"`
	Devices []string `json:"devices,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// FindSpecs lists the nvidia.com/gpu specs in dirs, plus jitPath when it
// exists outside them, and says which are fresh for the running driver.
func FindSpecs(dirs []string, jitPath, running string) []SpecInfo {
	cache, _ := cdi.NewCache(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(false))
	var out []SpecInfo
	seen := map[string]bool{}
	if cache != nil {
		for _, s := range cache.GetVendorSpecs("nvidia.com") {
			if s.Kind != Kind {
				continue
			}
			info := SpecInfo{Path: s.GetPath(), DriverVersion: SpecDriverVersion(s)}
			for _, d := range s.Devices {
				info.Devices = append(info.Devices, d.Name)
			}
			info.Fresh = info.DriverVersion != "" && info.DriverVersion == running
			out = append(out, info)
			seen[filepath.Clean(s.GetPath())] = true
		}
		for path, errs := range cache.GetErrors() {
			if len(errs) > 0 && !seen[filepath.Clean(path)] {
				out = append(out, SpecInfo{Path: path, Error: errs[0].Error()})
				seen[filepath.Clean(path)] = true
			}
		}
	}
	if jitPath != "" && !seen[filepath.Clean(jitPath)] {
		if _, err := os.Stat(jitPath); err == nil {
			info := SpecInfo{Path: jitPath}
			if s, err := cdi.ReadSpec(jitPath, 0); err != nil {
				info.Error = err.Error()
			} else {
				info.DriverVersion = SpecDriverVersion(s)
				for _, d := range s.Devices {
					info.Devices = append(info.Devices, d.Name)
				}
			}
			info.Fresh = info.DriverVersion != "" && info.DriverVersion == running
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// ListDevices returns the fully qualified names of every CDI device in dirs
// (all vendors, sorted) and one line per spec file that failed to load.
func ListDevices(dirs []string) ([]string, []string) {
	cache, err := cdi.NewCache(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(false))
	if cache == nil {
		return nil, []string{err.Error()}
	}
	var errs []string
	for path, list := range cache.GetErrors() {
		for _, e := range list {
			errs = append(errs, fmt.Sprintf("%s: %v", path, e))
		}
	}
	sort.Strings(errs)
	return cache.ListDevices(), errs
}
