// Package jsonread decodes JSON values found with gjson into Go values
// without encoding/json. nvbind-runtime runs once per container create, so
// encoding/json's reflection caches are always cold there, and building
// them cost more than reading and writing the specs themselves. Callers
// write one small function per type, naming its fields; the Reader keeps
// the first error and follows encoding/json's rules for the rest: null is
// a zero value (a nil slice, map or pointer), [] an empty slice, numbers
// must be integers of the field's size.
package jsonread

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// SyntaxError says why data is not JSON, in encoding/json's words; the
// slow path, for data a validator refused.
func SyntaxError(data []byte) error {
	if err := json.Unmarshal(data, new(json.RawMessage)); err != nil {
		return err
	}
	return errors.New("invalid JSON")
}

// Reader decodes values and keeps the first error; once it has one, every
// call returns zero values.
type Reader struct {
	// Strict refuses unknown fields and null list elements and matches
	// field names exactly (a CDI spec); otherwise unknown fields are
	// ignored and names match case-insensitively, as encoding/json reads
	// a config.json for runc.
	Strict bool
	Err    error
}

// Fail records that v is not what it should be, if nothing failed before.
func (r *Reader) Fail(what string, v gjson.Result, want string) {
	if r.Err == nil {
		r.Err = fmt.Errorf("%s: %.32s is not %s", what, v.Raw, want)
	}
}

// Object calls set with the index into names of each member of v; null is
// an absent object. A field given twice is refused (encoding/json would
// merge the two).
func (r *Reader) Object(v gjson.Result, what string, names []string, set func(i int, v gjson.Result)) {
	if r.Err != nil || v.Type == gjson.Null {
		return
	}
	if !v.IsObject() {
		r.Fail(what, v, "an object")
		return
	}
	var seen []int
	v.ForEach(func(k, v gjson.Result) bool {
		i := slices.Index(names, k.Str)
		if i < 0 && !r.Strict {
			i = slices.IndexFunc(names, func(n string) bool { return strings.EqualFold(n, k.Str) })
		}
		switch {
		case i < 0 && r.Strict:
			r.Err = fmt.Errorf("%s: unknown field %q", what, k.Str)
		case i < 0:
		case slices.Contains(seen, i):
			r.Err = fmt.Errorf("%s: field %q given twice", what, names[i])
		default:
			seen = append(seen, i)
			set(i, v)
		}
		return r.Err == nil
	})
}

// List decodes an array with elem: null is a nil slice, [] an empty one.
func List[T any](r *Reader, v gjson.Result, what string, elem func(gjson.Result) T) []T {
	if r.Err != nil || v.Type == gjson.Null {
		return nil
	}
	if !v.IsArray() {
		r.Fail(what, v, "a list")
		return nil
	}
	out := []T{}
	v.ForEach(func(_, v gjson.Result) bool {
		if r.Strict && v.Type == gjson.Null {
			r.Fail(what, v, "an element")
		} else {
			out = append(out, elem(v))
		}
		return r.Err == nil
	})
	return out
}

// String decodes a string; one that is not UTF-8 is refused (encoding/json
// would replace the bad bytes).
func (r *Reader) String(v gjson.Result, what string) string {
	if r.Err != nil || v.Type == gjson.Null {
		return ""
	}
	if v.Type != gjson.String || !utf8.ValidString(v.Str) {
		r.Fail(what, v, "a UTF-8 string")
		return ""
	}
	return v.Str
}

// Strings decodes a list of strings.
func (r *Reader) Strings(v gjson.Result, what string) []string {
	return List(r, v, what, func(v gjson.Result) string { return r.String(v, what) })
}

// StringMap decodes an object of strings; a key given twice keeps its last
// value, as in encoding/json.
func (r *Reader) StringMap(v gjson.Result, what string) map[string]string {
	if r.Err != nil || v.Type == gjson.Null {
		return nil
	}
	if !v.IsObject() {
		r.Fail(what, v, "an object")
		return nil
	}
	m := map[string]string{}
	v.ForEach(func(k, val gjson.Result) bool {
		if !utf8.ValidString(k.Str) {
			r.Fail(what, k, "a UTF-8 key")
		}
		m[k.Str] = r.String(val, what)
		return r.Err == nil
	})
	return m
}

// Uint decodes an unsigned integer of the given size.
func (r *Reader) Uint(v gjson.Result, what string, bits int) uint64 {
	if r.Err != nil || v.Type == gjson.Null {
		return 0
	}
	n, err := strconv.ParseUint(v.Raw, 10, bits)
	if v.Type != gjson.Number || err != nil {
		r.Fail(what, v, fmt.Sprintf("a %d-bit unsigned integer", bits))
	}
	return n
}

// Int decodes a signed integer of the given size.
func (r *Reader) Int(v gjson.Result, what string, bits int) int64 {
	if r.Err != nil || v.Type == gjson.Null {
		return 0
	}
	n, err := strconv.ParseInt(v.Raw, 10, bits)
	if v.Type != gjson.Number || err != nil {
		r.Fail(what, v, fmt.Sprintf("a %d-bit integer", bits))
	}
	return n
}

// Uint32 decodes a uint32.
func (r *Reader) Uint32(v gjson.Result, what string) uint32 { return uint32(r.Uint(v, what, 32)) }

// Uint32Ptr, Int64Ptr and IntPtr decode optional numbers: null is nil.
func (r *Reader) Uint32Ptr(v gjson.Result, what string) *uint32 {
	if v.Type == gjson.Null {
		return nil
	}
	n := r.Uint32(v, what)
	return &n
}

func (r *Reader) Int64Ptr(v gjson.Result, what string) *int64 {
	if v.Type == gjson.Null {
		return nil
	}
	n := r.Int(v, what, 64)
	return &n
}

func (r *Reader) IntPtr(v gjson.Result, what string) *int {
	if v.Type == gjson.Null {
		return nil
	}
	n := int(r.Int(v, what, strconv.IntSize))
	return &n
}

// Bool decodes a boolean.
func (r *Reader) Bool(v gjson.Result, what string) bool {
	switch {
	case r.Err != nil || v.Type == gjson.Null:
	case v.Type == gjson.True || v.Type == gjson.False:
		return v.Bool()
	default:
		r.Fail(what, v, "a boolean")
	}
	return false
}
