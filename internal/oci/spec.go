package oci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tidwall/gjson"

	"github.com/nvbind/nvbind/internal/atomicfile"
	"github.com/nvbind/nvbind/internal/jsonread"
	"github.com/nvbind/nvbind/internal/reqscan"
)

// MayRequest reports whether a spec can hold a GPU request, without
// decoding it (internal/reqscan: a leaf package, so that nvbind-hook's
// precreate passthrough can ask before the packages it links initialise).
func MayRequest(data []byte) bool { return reqscan.MayRequest(data) }

// Document is a config.json opened for editing. Only the members nvbind
// reads or edits are decoded into Spec: ociVersion, process.{env,user,
// rlimits}, mounts, hooks, annotations and linux.{devices,intelRdt,
// netDevices,resources.devices}. Everything else stays the raw JSON it was
// read as, in its order, so fields nvbind does not know (a newer
// runtime-spec, an engine's extensions) survive the rewrite as they were,
// and large parts such as a seccomp profile cost no decoding. Decoding only
// these small leaves, not whole runtime-spec structs, is most of what keeps
// a GPU create fast: encoding/json builds its reflection caches afresh in
// every process.
type Document struct {
	Spec *rspec.Spec
	top  *object
	size int // of the JSON read, to size the buffer it is written from
	// read holds, by field, the member as read and as the codec encoded
	// it then; keep what it did not decode (see keep.go).
	read map[string]readField
	keep keeper
}

type readField struct {
	orig  gjson.Result
	canon []byte
}

func (f *documentField) id() string { return strings.Join(f.parent, ".") + "." + f.key }

// documentField ties a member of a (nested) object to the decoded field
// that holds it.
type documentField struct {
	parent []string // keys of the enclosing objects, outermost first
	key    string
	ptr    any
	codec  leafCodec
	// known are the keys the codec owns in the member's top object; nil
	// when it owns them all (a map, a list).
	known []string
}

func field[T any](parent []string, key string, ptr *T, read func(*leafReader, gjson.Result) T, write func([]byte, T) []byte) documentField {
	return documentField{parent: parent, key: key, ptr: ptr, codec: leaf(ptr, read, write)}
}

func (d *Document) fields() []documentField {
	s := d.Spec
	f := []documentField{
		field(nil, "mounts", &s.Mounts, readMounts, writeMounts),
		withKnown(field(nil, "hooks", &s.Hooks, readHooks, appendHooks), hooksFields),
		field(nil, "annotations", &s.Annotations, readAnnotations, appendStringMap),
	}
	if p := s.Process; p != nil {
		process := []string{"process"}
		f = append(f, field(process, "env", &p.Env, readEnv, appendStrings),
			withKnown(field(process, "user", &p.User, readUser, appendUser), userFields),
			field(process, "rlimits", &p.Rlimits, readRlimits, writeRlimits))
	}
	if l := s.Linux; l != nil {
		linux := []string{"linux"}
		f = append(f, field(linux, "devices", &l.Devices, readDevices, writeDevices),
			documentField{parent: linux, key: "intelRdt", ptr: &l.IntelRdt, codec: jsonLeaf(&l.IntelRdt)},
			documentField{parent: linux, key: "netDevices", ptr: &l.NetDevices, codec: jsonLeaf(&l.NetDevices)})
		if l.Resources != nil {
			f = append(f, field([]string{"linux", "resources"}, "devices", &l.Resources.Devices, readRules, writeRules))
		}
	}
	return f
}

func withKnown(f documentField, known []string) documentField {
	f.known = known
	return f
}

// ParseDocument decodes a spec for editing.
func ParseDocument(data []byte) (*Document, error) {
	if !json.Valid(data) {
		// json.Valid accepts exactly what runc's decoder does.
		return nil, fmt.Errorf("invalid %s: %w", SpecFile, jsonread.SyntaxError(data))
	}
	top, err := parseObject(data)
	if err != nil {
		return nil, fmt.Errorf("invalid %s: %w", SpecFile, err)
	}
	d := &Document{Spec: &rspec.Spec{}, top: top, size: len(data), read: map[string]readField{}}
	if m := top.find("ociVersion"); m != nil {
		r := &leafReader{}
		if d.Spec.Version = r.String(m.val, "ociVersion"); r.Err != nil {
			return nil, fmt.Errorf("invalid %s: %w", SpecFile, r.Err)
		}
	}
	if d.Spec.Version == "" {
		return nil, fmt.Errorf("invalid %s: no ociVersion", SpecFile)
	}
	// The objects that hold decoded members are opened first, so that
	// fields() lists their members.
	if _, open, err := top.child("process"); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", SpecFile, err)
	} else if open {
		d.Spec.Process = &rspec.Process{}
	}
	d.Spec.Linux = &rspec.Linux{}
	if linux, open, err := top.child("linux"); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", SpecFile, err)
	} else if open {
		if _, open, err := linux.child("resources"); err != nil {
			return nil, fmt.Errorf("invalid %s: linux: %w", SpecFile, err)
		} else if open {
			d.Spec.Linux.Resources = &rspec.LinuxResources{}
		}
	}
	for _, f := range d.fields() {
		obj := top.descend(f.parent)
		if obj == nil {
			continue
		}
		m := obj.find(f.key)
		if m == nil {
			continue
		}
		if err := f.codec.decode(m.val); err != nil {
			if len(f.parent) > 0 {
				err = fmt.Errorf("%s: %w", strings.Join(f.parent, "."), err)
			}
			return nil, fmt.Errorf("invalid %s: %w", SpecFile, err)
		}
		canon, err := f.codec.encode(nil)
		if err != nil {
			return nil, fmt.Errorf("invalid %s: %s: %w", SpecFile, f.key, err)
		}
		d.read[f.id()] = readField{m.val, canon}
		d.keep.pair(m.val, gjson.ParseBytes(canon))
	}
	return d, nil
}

// Marshal encodes the document: the decoded members as they are now, the
// rest as read. A member that was absent and is still empty stays absent.
func (d *Document) Marshal() ([]byte, error) {
	d.keep.used = nil
	// Every member is encoded into one scratch buffer, and only what is
	// kept is copied out of it: growing a fresh buffer per member was most
	// of a GPU create's allocation, each new page a fault in a process
	// that lives a few milliseconds.
	scratch := make([]byte, 0, d.size+16<<10)
	for _, f := range d.fields() {
		had := d.top.descend(f.parent).find(f.key) != nil
		if !had && reflect.ValueOf(f.ptr).Elem().IsZero() {
			continue
		}
		enc, err := f.codec.encode(scratch[:0])
		if err != nil {
			return nil, fmt.Errorf("encode %s: %s: %w", SpecFile, f.key, err)
		}
		scratch = enc[:0]
		var raw []byte
		if r, ok := d.read[f.id()]; !ok {
			raw = bytes.Clone(enc)
		} else if bytes.Equal(enc, r.canon) {
			raw = []byte(r.orig.Raw) // unchanged: as read
		} else {
			raw = d.keep.restore(make([]byte, 0, len(enc)+len(r.orig.Raw)), gjson.ParseBytes(enc), r.orig, f.known)
		}
		d.top.create(f.parent).set(f.key, raw)
	}
	return d.top.marshal(make([]byte, 0, d.size+16<<10)), nil
}

// WriteDocument replaces the spec file at path atomically, keeping its
// mode, owner, group and extended attributes (SELinux label, ACLs); a
// symlinked config.json is edited through its target.
func WriteDocument(path string, d *Document) error {
	data, err := d.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.Replace(path, data)
}

// Lookup returns the raw member at path (keys of nested objects), as runc
// reads it: keys matched as encoding/json matches them, an object on the
// way given a key twice refused. A missing member is a zero Result. It
// changes nothing in the document.
func (d *Document) Lookup(path ...string) (gjson.Result, error) {
	o := d.top
	for i, key := range path {
		m := o.find(key)
		if m == nil {
			return gjson.Result{}, nil
		}
		if i == len(path)-1 {
			return m.val, nil
		}
		if m.obj != nil {
			o = m.obj // opened when the document was read
			continue
		}
		if m.val.Type == gjson.Null {
			return gjson.Result{}, nil
		}
		var err error
		if o, err = parseObjectValue(m.val); err != nil {
			return gjson.Result{}, fmt.Errorf("%s: %w", strings.Join(path[:i+1], "."), err)
		}
	}
	return gjson.Result{}, nil
}

// IsBind reports whether m is a bind mount, as runc reads it: type "bind"
// or a bind/rbind option.
func IsBind(m rspec.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}
