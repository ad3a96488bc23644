package recipes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"sigs.k8s.io/yaml"
)

// Change operations, named as in JSON Patch (RFC 6902).
const (
	ChangeAdd     = "add"
	ChangeRemove  = "remove"
	ChangeReplace = "replace"
)

// Change is one difference from document A to document B.
type Change struct {
	Op   string
	Path []string
	From any // A's value (remove, replace)
	To   any // B's value (add, replace)
}

// Diff is the drift from A to B, two snapshots or two recipes.
type Diff struct {
	Kind    string
	Changes []Change
}

// DiffDocuments compares two snapshots or two recipes. Snapshots are compared
// reading by reading (Type, subtype, key; metadata such as the time taken is
// not drift); recipes field by field, lists as a whole.
func DiffDocuments(a, b []byte) (*Diff, error) {
	ka, err := kindOf(a)
	if err != nil {
		return nil, fmt.Errorf("first document: %w", err)
	}
	kb, err := kindOf(b)
	if err != nil {
		return nil, fmt.Errorf("second document: %w", err)
	}
	if ka != kb {
		return nil, fmt.Errorf("cannot compare a %s with a %s", ka, kb)
	}
	var ta, tb map[string]any
	switch ka {
	case KindSnapshot:
		if ta, err = snapshotTree(a); err != nil {
			return nil, fmt.Errorf("first document: %w", err)
		}
		if tb, err = snapshotTree(b); err != nil {
			return nil, fmt.Errorf("second document: %w", err)
		}
	case KindRecipe:
		if ta, err = recipeTree(a); err != nil {
			return nil, fmt.Errorf("first document: %w", err)
		}
		if tb, err = recipeTree(b); err != nil {
			return nil, fmt.Errorf("second document: %w", err)
		}
	default:
		return nil, fmt.Errorf("cannot compare documents of kind %q (want %s or %s)", ka, KindSnapshot, KindRecipe)
	}
	d := &Diff{Kind: ka}
	diffValues(ta, tb, nil, &d.Changes)
	return d, nil
}

func kindOf(data []byte) (string, error) {
	var head struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return "", err
	}
	if head.Kind == "" {
		return "", fmt.Errorf("no kind (want %s or %s)", KindSnapshot, KindRecipe)
	}
	return head.Kind, nil
}

// snapshotTree is the normalized form JSON patches for snapshots address:
// {Type: {subtype: {key: value}}}.
func snapshotTree(data []byte) (map[string]any, error) {
	s, err := ReadSnapshot(data)
	if err != nil {
		return nil, err
	}
	t := map[string]any{}
	for _, m := range s.Measurements {
		tm, _ := t[m.Type].(map[string]any)
		if tm == nil {
			tm = map[string]any{}
			t[m.Type] = tm
		}
		for _, st := range m.Subtypes {
			ts, _ := tm[st.Subtype].(map[string]any)
			if ts == nil {
				ts = map[string]any{}
				tm[st.Subtype] = ts
			}
			for k, v := range st.Data {
				ts[k] = v
			}
		}
	}
	return t, nil
}

func recipeTree(data []byte) (map[string]any, error) {
	r, err := ReadRecipe(data)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var t map[string]any
	return t, decodeGeneric(raw, &t)
}

func diffValues(a, b any, path []string, out *[]Change) {
	ma, aIsMap := a.(map[string]any)
	mb, bIsMap := b.(map[string]any)
	if !aIsMap || !bIsMap {
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, Change{Op: ChangeReplace, Path: path, From: a, To: b})
		}
		return
	}
	keys := map[string]bool{}
	for k := range ma {
		keys[k] = true
	}
	for k := range mb {
		keys[k] = true
	}
	all := make(map[string]any, len(keys))
	for k := range keys {
		all[k] = nil
	}
	for _, k := range sortedKeys(all) {
		p := append(path[:len(path):len(path)], k)
		va, inA := ma[k]
		vb, inB := mb[k]
		switch {
		case !inA:
			*out = append(*out, Change{Op: ChangeAdd, Path: p, To: vb})
		case !inB:
			*out = append(*out, Change{Op: ChangeRemove, Path: p, From: va})
		default:
			diffValues(va, vb, p, out)
		}
	}
}

// Drift reports whether A and B differ.
func (d *Diff) Drift() bool { return len(d.Changes) > 0 }

// Text is the readable report: one line per changed reading or value,
// "~ path: old -> new", "+ path: new", "- path: old".
func (d *Diff) Text() []byte {
	var b bytes.Buffer
	added, removed, changed := 0, 0, 0
	for _, c := range d.Changes {
		switch c.Op {
		case ChangeAdd:
			walkValue(c.To, c.Path, func(p []string, v any) {
				fmt.Fprintf(&b, "+ %s: %s\n", strings.Join(p, "."), displayValue(v))
				added++
			})
		case ChangeRemove:
			walkValue(c.From, c.Path, func(p []string, v any) {
				fmt.Fprintf(&b, "- %s: %s\n", strings.Join(p, "."), displayValue(v))
				removed++
			})
		default:
			fmt.Fprintf(&b, "~ %s: %s -> %s\n", strings.Join(c.Path, "."), displayValue(c.From), displayValue(c.To))
			changed++
		}
	}
	if len(d.Changes) == 0 {
		fmt.Fprintf(&b, "no drift: the %ss are the same\n", strings.ToLower(d.Kind))
		return b.Bytes()
	}
	fmt.Fprintf(&b, "drift: %d changed, %d added, %d removed\n", changed, added, removed)
	return b.Bytes()
}

// walkValue expands a map into its leaves so an added or removed subtree
// reads one value per line.
func walkValue(v any, path []string, fn func([]string, any)) {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		fn(path, v)
		return
	}
	walkLeaves(m, path, fn)
}

// JSONPatch renders the changes as an RFC 6902 patch that turns A into B
// (for snapshots, A's normalized {Type: {subtype: {key: value}}} form).
func (d *Diff) JSONPatch() ([]byte, error) {
	ops := make([]map[string]any, 0, len(d.Changes))
	for _, c := range d.Changes {
		op := map[string]any{"op": c.Op, "path": pointer(c.Path)}
		if c.Op != ChangeRemove {
			op["value"] = c.To // present even when null
		}
		ops = append(ops, op)
	}
	b, err := json.MarshalIndent(ops, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// pointer builds a JSON Pointer (RFC 6901): "~" is "~0", "/" is "~1".
func pointer(path []string) string {
	var b strings.Builder
	for _, p := range path {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(p))
	}
	return b.String()
}
