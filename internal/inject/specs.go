package inject

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unsafe"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tidwall/gjson"
	"tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"
	cdispec "tags.cncf.io/container-device-interface/specs-go"

	"github.com/nvbind/nvbind/internal/jsonread"
	"github.com/nvbind/nvbind/internal/plainfile"
	"github.com/nvbind/nvbind/internal/spectrust"
)

// specs.go reads the CDI spec dirs for one create, by the CDI library's
// rules: *.json and *.yaml files, no recursion, a later dir wins a device
// name, and two specs of one dir that define the same device make it
// unusable. The library parses YAML specs, validates names and edits, and
// applies the edits. JSON specs (what nvbind writes for the runtime) are
// decoded with encoding/json instead, and a device's edits only when the
// container asks for it: the library decodes every spec with its YAML
// parser, which was the largest cost of a GPU create (2 ms for an 8-GPU
// spec).

// specFile is one parsed, validated spec.
type specFile struct {
	path     string
	priority int
	raw      *cdispec.Spec
	// pending holds the undecoded edits of a JSON spec's devices, by index
	// into raw.Devices; edits() decodes and validates them on use.
	pending []string
}

// specDevice is one device of a spec.
type specDevice struct {
	spec  *specFile
	index int
}

// edits returns the device's edits, decoding and validating them first if
// they are still pending.
func (d *specDevice) edits() (*cdispec.ContainerEdits, error) {
	f := d.spec
	dev := &f.raw.Devices[d.index]
	if f.pending == nil || f.pending[d.index] == "" {
		return &dev.ContainerEdits, nil
	}
	edits, err := decodeEdits(f.pending[d.index])
	if err != nil {
		return nil, fmt.Errorf("%s: device %q: %w", f.path, dev.Name, err)
	}
	dev.ContainerEdits = edits
	f.pending[d.index] = ""
	if err := validateDevice(dev); err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	// The version must allow what this device uses too.
	one := *f.raw
	one.Devices = []cdispec.Device{*dev}
	if err := cdispec.ValidateVersion(&one); err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	return &dev.ContainerEdits, nil
}

// specSet is every device the spec dirs define.
type specSet struct {
	dirs    []string
	devices map[string]*specDevice
	// errors holds why a spec file was skipped, by path.
	errors map[string]error
}

// readSpecDirs reads dirs, lowest priority first. As root it skips spec
// files that someone else could change (see spectrust), warning with warn.
func readSpecDirs(dirs []string, warn func(string, ...any)) (*specSet, error) {
	set := &specSet{dirs: dirs, devices: map[string]*specDevice{}, errors: map[string]error{}}
	conflicts := map[string]bool{}
	var trust *spectrust.Checker
	if spectrust.Enforced() {
		trust = &spectrust.Checker{}
	}
	for priority, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read CDI spec dir: %w", err)
		}
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); e.IsDir() || (ext != ".json" && ext != ".yaml") {
				continue
			}
			path := filepath.Join(dir, e.Name())
			if trust != nil {
				if err := trust.Check(path); err != nil {
					err = fmt.Errorf("untrusted, skipped: %w", err)
					warn("CDI spec %s: %v", path, err)
					set.errors[path] = err
					continue
				}
			}
			spec, err := readSpecFile(path, priority)
			if err != nil {
				set.errors[path] = err
				continue
			}
			for i := range spec.raw.Devices {
				name := spec.raw.Kind + "=" + spec.raw.Devices[i].Name
				if old, ok := set.devices[name]; ok && old.spec.priority == priority {
					conflicts[name] = true
					set.errors[path] = fmt.Errorf("device %q is also defined in %s", name, old.spec.path)
				}
				set.devices[name] = &specDevice{spec: spec, index: i}
			}
		}
	}
	for name := range conflicts {
		delete(set.devices, name)
	}
	return set, nil
}

func readSpecFile(path string, priority int) (*specFile, error) {
	data, err := plainfile.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseSpecFile(path, data, priority)
}

// parseSpecFile parses and validates a spec's bytes; path names it.
func parseSpecFile(path string, data []byte, priority int) (*specFile, error) {
	var err error
	spec := &specFile{path: path, priority: priority}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		spec.raw, spec.pending, err = parseJSONSpec(data)
	} else {
		spec.raw, err = cdi.ParseSpec(data)
	}
	if err != nil {
		return nil, fmt.Errorf("parse CDI spec: %w", err)
	}
	if err := validateSpec(spec.raw, spec.pending == nil); err != nil {
		return nil, fmt.Errorf("invalid CDI spec: %w", err)
	}
	return spec, nil
}

// maxJSONDepth bounds the nesting of a JSON spec (real ones nest 5 deep)
// before gjson's recursive validator reads it.
const maxJSONDepth = 64

var (
	specFields       = []string{"cdiVersion", "kind", "annotations", "devices", "containerEdits"}
	specDeviceFields = []string{"name", "annotations", "containerEdits"}
)

// parseJSONSpec decodes a JSON spec strictly, all but the device edits,
// which it returns raw, by index into Devices. gjson finds the members
// without decoding them, in one pass over the file: encoding/json needs two,
// its reflection caches start cold in every create, and each allocation
// here is a fresh page fault.
func parseJSONSpec(data []byte) (*cdispec.Spec, []string, error) {
	if !nestingWithin(data, maxJSONDepth) {
		return nil, nil, fmt.Errorf("JSON nested deeper than %d", maxJSONDepth)
	}
	if !gjson.ValidBytes(data) {
		return nil, nil, jsonread.SyntaxError(data)
	}
	// No copy of the file as a string: data is never written to, and the
	// names and raw edits taken from it stay valid for the create.
	root := gjson.Parse(unsafe.String(unsafe.SliceData(data), len(data)))
	raw := &cdispec.Spec{}
	var pending []string
	r := &jsonread.Reader{Strict: true}
	r.Object(root, "top level", specFields, func(i int, v gjson.Result) {
		switch i {
		case 0:
			raw.Version = r.String(v, "cdiVersion")
		case 1:
			raw.Kind = r.String(v, "kind")
		case 2:
			raw.Annotations = r.StringMap(v, "annotations")
		case 3:
			raw.Devices = jsonread.List(r, v, "devices", func(d gjson.Result) cdispec.Device {
				dev, edits := parseJSONDevice(r, d)
				pending = append(pending, edits)
				return dev
			})
		case 4:
			edits, err := decodeEdits(v.Raw)
			if err != nil && r.Err == nil {
				r.Err = fmt.Errorf("containerEdits: %w", err)
			}
			raw.ContainerEdits = edits
		}
	})
	if r.Err == nil && !root.IsObject() {
		r.Err = errors.New("not a JSON object")
	}
	return raw, pending, r.Err
}

// parseJSONDevice decodes a device's name and annotations and returns its
// edits undecoded.
func parseJSONDevice(r *jsonread.Reader, d gjson.Result) (dev cdispec.Device, edits string) {
	r.Object(d, "devices", specDeviceFields, func(i int, v gjson.Result) {
		switch i {
		case 0:
			dev.Name = r.String(v, "name")
		case 1:
			dev.Annotations = r.StringMap(v, "annotations")
		case 2:
			edits = v.Raw
		}
	})
	if r.Err == nil && (edits == "" || edits == "null") {
		r.Err = fmt.Errorf("device %q has no edits", dev.Name)
	}
	return dev, edits
}

// nestingWithin reports whether no array or object in data nests deeper
// than limit. A spec is mostly strings (paths), so each string is skipped
// with bytes.IndexByte to its closing quote rather than byte by byte.
func nestingWithin(data []byte, limit int) bool {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			// Find the closing quote: one not escaped by an odd run of
			// backslashes. An unterminated string ends the scan (the
			// validator refuses it).
			for {
				j := bytes.IndexByte(data[i+1:], '"')
				if j < 0 {
					return true
				}
				i += j + 1
				k := i - 1
				for k >= 0 && data[k] == '\\' {
					k--
				}
				if (i-1-k)%2 == 0 {
					break
				}
			}
		case '{', '[':
			if depth++; depth > limit {
				return false
			}
		case '}', ']':
			depth--
		}
	}
	return true
}

// validateSpec applies the CDI library's checks of a spec: version, kind,
// device names, and (when withDevices) every device's edits; devices of a
// JSON spec are checked when first used.
func validateSpec(raw *cdispec.Spec, withDevices bool) error {
	if err := cdispec.ValidateVersion(raw); err != nil {
		return err
	}
	vendor, class := parser.ParseQualifier(raw.Kind)
	if err := parser.ValidateVendorName(vendor); err != nil {
		return err
	}
	if err := parser.ValidateClassName(class); err != nil {
		return err
	}
	if err := (&cdi.ContainerEdits{ContainerEdits: &raw.ContainerEdits}).Validate(); err != nil {
		return err
	}
	if len(raw.Devices) == 0 {
		return errors.New("no devices")
	}
	seen := make(map[string]bool, len(raw.Devices))
	for i := range raw.Devices {
		d := &raw.Devices[i]
		if err := parser.ValidateDeviceName(d.Name); err != nil {
			return err
		}
		if seen[d.Name] {
			return fmt.Errorf("device %q defined twice", d.Name)
		}
		seen[d.Name] = true
		if withDevices {
			if err := validateDevice(d); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateDevice(d *cdispec.Device) error {
	if isEmpty(&d.ContainerEdits) {
		return fmt.Errorf("device %q has no edits", d.Name)
	}
	if err := (&cdi.ContainerEdits{ContainerEdits: &d.ContainerEdits}).Validate(); err != nil {
		return fmt.Errorf("device %q: %w", d.Name, err)
	}
	return nil
}

func isEmpty(e *cdispec.ContainerEdits) bool {
	return len(e.Env) == 0 && len(e.DeviceNodes) == 0 && len(e.Hooks) == 0 && len(e.Mounts) == 0 &&
		len(e.NetDevices) == 0 && len(e.AdditionalGIDs) == 0 && e.IntelRdt == nil
}

// replaceNvbindSpecs puts the spec data (made in memory, named by path)
// above every spec dir, in place of the devices of every spec nvbind made
// for its kind: those are stale when a just-in-time spec is needed.
func (s *specSet) replaceNvbindSpecs(path string, data []byte) error {
	spec, err := parseSpecFile(path, data, len(s.dirs))
	if err != nil {
		return err
	}
	for name, d := range s.devices {
		if d.spec.raw.Kind == spec.raw.Kind && recordedDriverVersion(d.spec.raw) != "" {
			delete(s.devices, name)
		}
	}
	for i := range spec.raw.Devices {
		s.devices[spec.raw.Kind+"="+spec.raw.Devices[i].Name] = &specDevice{spec: spec, index: i}
	}
	return nil
}

// has reports whether a device is defined.
func (s *specSet) has(name string) bool { return s.devices[name] != nil }

// inject applies the edits of names to spec, each spec's common edits
// once, the way the CDI library's cache does.
func (s *specSet) inject(spec *rspec.Spec, names []string) error {
	var unresolved []string
	edits := &cdi.ContainerEdits{}
	applied := map[*specFile]bool{}
	for _, name := range names {
		d := s.devices[name]
		if d == nil {
			unresolved = append(unresolved, name)
			continue
		}
		devEdits, err := d.edits()
		if err != nil {
			return fmt.Errorf("CDI device %s: %w", name, err)
		}
		if !applied[d.spec] {
			applied[d.spec] = true
			edits = edits.Append(&cdi.ContainerEdits{ContainerEdits: &d.spec.raw.ContainerEdits})
		}
		edits = edits.Append(&cdi.ContainerEdits{ContainerEdits: devEdits})
	}
	if len(unresolved) > 0 {
		sort.Strings(unresolved)
		return fmt.Errorf("unresolvable CDI device %s (specs searched in %s)%s",
			strings.Join(unresolved, ", "), strings.Join(s.dirs, ", "), s.errorSummary())
	}
	if err := edits.Apply(spec); err != nil {
		return fmt.Errorf("inject CDI devices: %w", err)
	}
	return nil
}

// errorSummary names the first broken spec file: its devices would
// otherwise just look missing.
func (s *specSet) errorSummary() string {
	if len(s.errors) == 0 {
		return ""
	}
	paths := make([]string, 0, len(s.errors))
	for p := range s.errors {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return fmt.Sprintf("; skipped spec %s: %v", paths[0], s.errors[paths[0]])
}
