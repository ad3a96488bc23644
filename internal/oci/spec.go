package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nvbind/nvbind/internal/atomicfile"
)

// SpecFile is the spec's file name inside a bundle.
const SpecFile = "config.json"

// maxSpecSize bounds what nvbind reads; real specs are a few KiB.
const maxSpecSize = 16 << 20

// ReadSpec reads the bundle's config.json.
func ReadSpec(bundle string) ([]byte, error) {
	path := filepath.Join(bundle, SpecFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read bundle spec: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read bundle spec: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxSpecSize {
		return nil, fmt.Errorf("read bundle spec %s: not a regular file of at most %d bytes", path, maxSpecSize)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("read bundle spec %s: %w", path, err)
	}
	return data, nil
}

// requestMarkers are strings one of which any GPU request contains: the
// env names and annotation prefixes internal/request reads.
var requestMarkers = [][]byte{
	[]byte("NVIDIA_VISIBLE_DEVICES"), []byte("NVBIND_PROFILE"), []byte("cdi.k8s.io"), []byte("nvbind.io"),
}

// MayRequest reports whether a spec can hold a GPU request, without
// decoding it: a request needs one of the markers literally, unless the
// JSON spells letters as \u escapes. Most containers ask for no GPU, and
// this keeps their create as cheap as any other passed-through call.
func MayRequest(data []byte) bool {
	if bytes.Contains(data, []byte(`\u`)) {
		return true
	}
	for _, m := range requestMarkers {
		if bytes.Contains(data, m) {
			return true
		}
	}
	return false
}

// Document is a config.json opened for editing. Only what nvbind edits or
// reads is decoded into Spec: ociVersion, process, mounts, hooks,
// annotations, and linux.{devices,resources,namespaces,intelRdt,netDevices}.
// Everything else stays the raw JSON it was read as, so fields nvbind does
// not know (a newer runtime-spec, an engine's extensions) survive the
// rewrite as they were, and large parts such as a seccomp profile cost no
// decoding.
type Document struct {
	Spec  *rspec.Spec
	top   map[string]json.RawMessage
	linux map[string]json.RawMessage
}

// documentField ties a JSON key to the decoded field that holds it.
type documentField struct {
	key string
	ptr any
}

func (d *Document) topFields() []documentField {
	s := d.Spec
	return []documentField{{"process", &s.Process}, {"mounts", &s.Mounts}, {"hooks", &s.Hooks}, {"annotations", &s.Annotations}}
}

func (d *Document) linuxFields() []documentField {
	l := d.Spec.Linux
	return []documentField{{"devices", &l.Devices}, {"resources", &l.Resources}, {"namespaces", &l.Namespaces},
		{"intelRdt", &l.IntelRdt}, {"netDevices", &l.NetDevices}}
}

// ParseDocument decodes a spec for editing.
func ParseDocument(data []byte) (*Document, error) {
	d := &Document{Spec: &rspec.Spec{}}
	top, err := splitObject(data)
	if err != nil {
		return nil, fmt.Errorf("invalid %s: %w", SpecFile, err)
	}
	d.top = top
	if err := decodeField(d.top, "ociVersion", &d.Spec.Version); err != nil {
		return nil, err
	}
	if d.Spec.Version == "" {
		return nil, fmt.Errorf("invalid %s: no ociVersion", SpecFile)
	}
	for _, f := range d.topFields() {
		if err := decodeField(d.top, f.key, f.ptr); err != nil {
			return nil, err
		}
	}
	d.linux = map[string]json.RawMessage{}
	if key := findKey(d.top, "linux"); key != "" && string(d.top[key]) != "null" {
		if d.linux, err = splitObject(d.top[key]); err != nil {
			return nil, fmt.Errorf("invalid %s: linux: %w", SpecFile, err)
		}
	}
	d.Spec.Linux = &rspec.Linux{}
	for _, f := range d.linuxFields() {
		if err := decodeField(d.linux, f.key, f.ptr); err != nil {
			return nil, fmt.Errorf("%w (in linux)", err)
		}
	}
	return d, nil
}

// splitObject splits a JSON object into its members. Keys that differ only
// in case are refused: runc (encoding/json) matches keys case-insensitively
// and merges repeats, so such a spec could mean one thing to nvbind and
// another to runc.
func splitObject(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return nil, jsonError(err)
	} else if tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(err)
		}
		key, _ := tok.(string)
		if other := findKey(m, key); other != "" {
			return nil, fmt.Errorf("key %q given twice (as %q)", key, other)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonError(err)
		}
		m[key] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return m, nil
}

// jsonError words a truncated document the way json.Unmarshal does.
func jsonError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("unexpected end of JSON input")
	}
	return err
}

// findKey returns the key of m that equals key ignoring case, "" if none.
func findKey(m map[string]json.RawMessage, key string) string {
	if _, ok := m[key]; ok {
		return key
	}
	for k := range m {
		if strings.EqualFold(k, key) {
			return k
		}
	}
	return ""
}

func decodeField(m map[string]json.RawMessage, key string, ptr any) error {
	k := findKey(m, key)
	if k == "" {
		return nil
	}
	if err := json.Unmarshal(m[k], ptr); err != nil {
		return fmt.Errorf("invalid %s: %s: %w", SpecFile, key, err)
	}
	return nil
}

// Marshal encodes the document: the decoded fields as they are now, the
// rest as read. A field that was absent and is still empty stays absent.
func (d *Document) Marshal() ([]byte, error) {
	for _, f := range d.linuxFields() {
		if err := encodeField(d.linux, f.key, f.ptr); err != nil {
			return nil, err
		}
	}
	if len(d.linux) > 0 {
		raw, err := json.Marshal(d.linux)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", SpecFile, err)
		}
		key := findKey(d.top, "linux")
		if key == "" {
			key = "linux"
		}
		d.top[key] = raw
	}
	for _, f := range d.topFields() {
		if err := encodeField(d.top, f.key, f.ptr); err != nil {
			return nil, err
		}
	}
	return json.Marshal(d.top)
}

func encodeField(m map[string]json.RawMessage, key string, ptr any) error {
	had := findKey(m, key)
	if had == "" && reflect.ValueOf(ptr).Elem().IsZero() {
		return nil
	}
	if had != "" {
		key = had
	}
	raw, err := json.Marshal(ptr)
	if err != nil {
		return fmt.Errorf("encode %s: %s: %w", SpecFile, key, err)
	}
	m[key] = raw
	return nil
}

// WriteDocument replaces the bundle's config.json atomically, keeping its
// mode.
func WriteDocument(bundle string, d *Document) error {
	data, err := d.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(bundle, SpecFile), data, 0o600)
}
