package recipes

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// SnapshotAPIVersion is the apiVersion of AICR's Snapshot documents; nvbind
// writes the same so either tool reads the other's snapshots.
const SnapshotAPIVersion = "aicr.nvidia.com/v1alpha1"

// Measurement types and subtypes nvbind uses beyond AICR's own.
const (
	// UnreadableType/UnreadableSubtype hold, in a partial snapshot, the
	// readings that could not be taken: data maps a reading's name
	// (Type.subtype or Type.subtype.key) to the reason.
	UnreadableType    = "NVBind"
	UnreadableSubtype = "unreadable"
)

// Snapshot is a node's measurements in AICR's format:
// measurements[{type, subtypes[{subtype, data}]}].
type Snapshot struct {
	Kind         string         `json:"kind"`
	APIVersion   string         `json:"apiVersion"`
	Metadata     map[string]any `json:"metadata,omitempty"`
	Measurements []Measurement  `json:"measurements"`

	index map[string]string
}

// Measurement is one type of readings (OS, GPU, K8s, SystemD, ...).
type Measurement struct {
	Type     string    `json:"type"`
	Subtypes []Subtype `json:"subtypes,omitempty"`
}

// Subtype is one group of readings within a measurement type.
type Subtype struct {
	Subtype string         `json:"subtype"`
	Data    map[string]any `json:"data"`
}

// ReadSnapshot parses a snapshot in YAML or JSON, ours or AICR's.
func ReadSnapshot(data []byte) (*Snapshot, error) {
	var s Snapshot
	if err := decodeGeneric(data, &s); err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	if s.Kind != KindSnapshot {
		return nil, fmt.Errorf("read snapshot: kind is %q, want %s", s.Kind, KindSnapshot)
	}
	for _, m := range s.Measurements {
		if m.Type == "" {
			return nil, fmt.Errorf("read snapshot: a measurement has no type")
		}
		for _, st := range m.Subtypes {
			if st.Subtype == "" {
				return nil, fmt.Errorf("read snapshot: a %s measurement has a subtype without a name", m.Type)
			}
		}
	}
	s.buildIndex()
	return &s, nil
}

// Set records one reading, creating its measurement and subtype as needed.
func (s *Snapshot) Set(typ, subtype, key string, value any) {
	st := s.subtype(typ, subtype)
	st.Data[key] = value
	s.index = nil
}

// MarkUnreadable records why a reading (Type.subtype or Type.subtype.key)
// could not be taken, and marks the snapshot partial.
func (s *Snapshot) MarkUnreadable(name, reason string) {
	s.Set(UnreadableType, UnreadableSubtype, name, reason)
	if s.Metadata == nil {
		s.Metadata = map[string]any{}
	}
	s.Metadata["partial"] = "true"
}

func (s *Snapshot) subtype(typ, subtype string) *Subtype {
	var m *Measurement
	for i := range s.Measurements {
		if s.Measurements[i].Type == typ {
			m = &s.Measurements[i]
			break
		}
	}
	if m == nil {
		s.Measurements = append(s.Measurements, Measurement{Type: typ})
		m = &s.Measurements[len(s.Measurements)-1]
	}
	for i := range m.Subtypes {
		if m.Subtypes[i].Subtype == subtype {
			return &m.Subtypes[i]
		}
	}
	m.Subtypes = append(m.Subtypes, Subtype{Subtype: subtype, Data: map[string]any{}})
	return &m.Subtypes[len(m.Subtypes)-1]
}

// Sort orders measurements and subtypes by name so encoding is stable.
func (s *Snapshot) Sort() {
	sort.Slice(s.Measurements, func(i, j int) bool { return s.Measurements[i].Type < s.Measurements[j].Type })
	for _, m := range s.Measurements {
		sort.Slice(m.Subtypes, func(i, j int) bool { return m.Subtypes[i].Subtype < m.Subtypes[j].Subtype })
	}
}

// buildIndex maps every reading's full name Type.subtype.key to its value as
// text. Indexing the joined name means subtypes with dots in them
// (SystemD's containerd.service) are found too.
func (s *Snapshot) buildIndex() {
	s.index = map[string]string{}
	for _, m := range s.Measurements {
		for _, st := range m.Subtypes {
			for k, v := range st.Data {
				name := m.Type + "." + st.Subtype + "." + k
				if _, dup := s.index[name]; dup || v == nil {
					continue
				}
				s.index[name] = valueText(v)
			}
		}
	}
}

// Lookup returns a reading by its name Type.subtype.key.
func (s *Snapshot) Lookup(name string) (string, bool) {
	if s.index == nil {
		s.buildIndex()
	}
	v, ok := s.index[name]
	return v, ok
}

// Unreadable returns the recorded reason a reading is missing, if any: the
// reading itself or its Type.subtype group may be marked.
func (s *Snapshot) Unreadable(name string) (string, bool) {
	prefix := UnreadableType + "." + UnreadableSubtype + "."
	for n := name; ; {
		if r, ok := s.Lookup(prefix + n); ok {
			return r, true
		}
		i := strings.LastIndexByte(n, '.')
		if i < 0 {
			return "", false
		}
		n = n[:i]
	}
}

// Flatten returns every reading as name → value text, for diffs.
func (s *Snapshot) Flatten() map[string]string {
	if s.index == nil {
		s.buildIndex()
	}
	return s.index
}

// valueText renders a reading as the text constraints compare against.
func valueText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	case nil:
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// displayValue is valueText for people: null shows as null.
func displayValue(v any) string {
	if v == nil {
		return "null"
	}
	return valueText(v)
}
