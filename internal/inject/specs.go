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
// decoded with gjson instead, and a device's edits only when the container
// asks for it: the library decodes every spec with its YAML parser, which
// was the largest cost of a GPU create (2 ms for an 8-GPU spec). A JSON
// spec read before is decoded through its spec index (specindex.go).

// specFile is one parsed, validated spec.
type specFile struct {
	path     string
	priority int
	raw      *cdispec.Spec
	// pending holds the undecoded edits of a JSON spec's devices, by index
	// into raw.Devices; edits() decodes and validates them on use.
	pending []string
	// indexed: decoded through a spec index, so pending edits have not
	// been checked to be JSON with the rest of the file.
	indexed bool
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
	raw := f.pending[d.index]
	if f.indexed && !gjson.Valid(raw) {
		return nil, fmt.Errorf("%s: device %q: invalid JSON edits", f.path, dev.Name)
	}
	edits, err := decodeEdits(raw)
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
func readSpecDirs(dirs []string, index *specIndex, warn func(string, ...any)) (*specSet, error) {
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
			spec, err := readSpecFile(path, priority, index)
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

func readSpecFile(path string, priority int, index *specIndex) (*specFile, error) {
	data, st, stable, err := plainfile.ReadFileStable(path)
	if err != nil {
		return nil, err
	}
	if !stable {
		index = nil // changed while read: its stat describes other bytes
	}
	id := fileIDOf(&st)
	if l := index.lookup(path, id); l != nil {
		if b, err := fromLayout(data, l); err == nil {
			if spec, err := validated(path, priority, b.raw, b.pending); err == nil {
				spec.indexed = true
				indexHits.Add(1)
				return spec, nil
			}
		}
		// A spec the index does not describe: read it as without one.
	}
	spec, layout, err := parseSpec(path, data, priority)
	if err == nil {
		index.store(path, id, layout)
	}
	return spec, err
}

// parseSpecFile parses and validates a spec's bytes; path names it.
func parseSpecFile(path string, data []byte, priority int) (*specFile, error) {
	spec, _, err := parseSpec(path, data, priority)
	return spec, err
}

// parseSpec is parseSpecFile that also returns a JSON spec's layout for
// the spec index (nil for YAML).
func parseSpec(path string, data []byte, priority int) (*specFile, *specLayout, error) {
	var (
		raw     *cdispec.Spec
		pending []string
		layout  *specLayout
		err     error
	)
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		raw, pending, layout, err = parseJSONSpec(data)
	} else {
		raw, err = cdi.ParseSpec(data)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("parse CDI spec: %w", err)
	}
	spec, err := validated(path, priority, raw, pending)
	return spec, layout, err
}

// validated is the spec file of raw (with its JSON devices' edits still
// pending) once validateSpec passes.
func validated(path string, priority int, raw *cdispec.Spec, pending []string) (*specFile, error) {
	if err := validateSpec(raw, pending == nil); err != nil {
		return nil, fmt.Errorf("invalid CDI spec: %w", err)
	}
	return &specFile{path: path, priority: priority, raw: raw, pending: pending}, nil
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
// here is a fresh page fault. The layout it returns says where each member
// is in data, for the spec index (specindex.go); nil when it cannot tell.
func parseJSONSpec(data []byte) (*cdispec.Spec, []string, *specLayout, error) {
	if !nestingWithin(data, maxJSONDepth) {
		return nil, nil, nil, fmt.Errorf("JSON nested deeper than %d", maxJSONDepth)
	}
	if !gjson.ValidBytes(data) {
		return nil, nil, nil, jsonread.SyntaxError(data)
	}
	// No copy of the file as a string: data is never written to, and the
	// names and raw edits taken from it stay valid for the create.
	root := gjson.Parse(unsafe.String(unsafe.SliceData(data), len(data)))
	b := newSpecBuilder(data)
	r := b.r
	r.Object(root, "top level", specFields, func(i int, v gjson.Result) {
		if i != 3 {
			b.member(i, v)
			return
		}
		b.layout.devices, b.pending = nil, nil
		b.raw.Devices = jsonread.List(r, v, "devices", func(d gjson.Result) cdispec.Device {
			var dl deviceLayout
			r.Object(d, "devices", specDeviceFields, func(i int, v gjson.Result) {
				dl[i] = b.spanOf(v)
			})
			b.layout.devices = append(b.layout.devices, dl)
			return b.device(dl)
		})
	})
	if r.Err == nil && !root.IsObject() {
		r.Err = errors.New("not a JSON object")
	}
	if r.Err != nil {
		return nil, nil, nil, r.Err
	}
	layout := &b.layout
	if b.unplaced {
		layout = nil
	}
	return b.raw, b.pending, layout, nil
}

// specBuilder makes a spec from its members, found by a walk over the
// file or by a spec index: one decoding for both.
type specBuilder struct {
	data    []byte
	r       *jsonread.Reader
	raw     *cdispec.Spec
	pending []string
	layout  specLayout
	// unplaced: a member's bytes were not found in data (no layout).
	unplaced bool
}

func newSpecBuilder(data []byte) *specBuilder {
	return &specBuilder{data: data, r: &jsonread.Reader{Strict: true}, raw: &cdispec.Spec{}}
}

// member decodes the top-level member specFields[i], any but the devices.
func (b *specBuilder) member(i int, v gjson.Result) {
	r := b.r
	b.layout.top[i] = b.spanOf(v)
	switch i {
	case 0:
		b.raw.Version = r.String(v, "cdiVersion")
	case 1:
		b.raw.Kind = r.String(v, "kind")
	case 2:
		b.raw.Annotations = r.StringMap(v, "annotations")
	case 4:
		edits, err := decodeEdits(v.Raw)
		if err != nil && r.Err == nil {
			r.Err = fmt.Errorf("containerEdits: %w", err)
		}
		b.raw.ContainerEdits = edits
	}
}

// device decodes a device's name and annotations, and keeps its edits
// undecoded in pending.
func (b *specBuilder) device(dl deviceLayout) cdispec.Device {
	var dev cdispec.Device
	r := b.r
	if s := dl[0]; s.n > 0 {
		dev.Name = r.String(b.value(s), "name")
	}
	if s := dl[1]; s.n > 0 {
		dev.Annotations = r.StringMap(b.value(s), "annotations")
	}
	edits := b.rawAt(dl[2])
	if r.Err == nil && (edits == "" || edits == "null") {
		r.Err = fmt.Errorf("device %q has no edits", dev.Name)
	}
	b.pending = append(b.pending, edits)
	return dev
}

// spanOf is where v's bytes are in data: gjson's values are slices of the
// string made from data (parseJSONSpec), not copies.
func (b *specBuilder) spanOf(v gjson.Result) span {
	if len(v.Raw) == 0 {
		return span{}
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b.data)))
	off := uintptr(unsafe.Pointer(unsafe.StringData(v.Raw))) - base
	if off > uintptr(len(b.data)) || uintptr(len(v.Raw)) > uintptr(len(b.data))-off {
		b.unplaced = true
		return span{}
	}
	return span{off: uint32(off), n: uint32(len(v.Raw))}
}

// rawAt is the text of s in data.
func (b *specBuilder) rawAt(s span) string {
	if s.n == 0 {
		return ""
	}
	return unsafe.String(&b.data[s.off], s.n)
}

// value is the JSON value at s.
func (b *specBuilder) value(s span) gjson.Result {
	return gjson.Parse(b.rawAt(s))
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
