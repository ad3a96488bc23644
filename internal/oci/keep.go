package oci

import (
	"strings"

	"github.com/tidwall/gjson"
)

// keep.go keeps what the leaf codec does not know. The codec decodes a
// member into runtime-spec types, which have no room for keys newer than
// runtime-spec (or an engine's extension keys), and encodes it the way
// json.Marshal would. So that nothing nvbind does not own is lost:
//
//   - a member nvbind did not change is written back as it was read;
//   - in a changed one, every part (a mount, a hook, a device...) equal to
//     a part read is written as it was read, unknown keys and order
//     included;
//   - a changed object at a member's top (process.user, hooks,
//     annotations) keeps its members' order and its unknown keys, with the
//     new values of the keys the codec knows.

// keeper maps the codec's encoding of each part decoded to the JSON it
// was decoded from, where the two differ.
type keeper struct {
	raws map[string][]string // canonical JSON -> original JSON, in order met
	used map[string]int      // per Marshal: originals handed out
}

// pair records orig, decoded and encoded again as canon, and its parts.
// Parts pair up by index in arrays and by key (as the codec matches them)
// in objects.
func (k *keeper) pair(orig, canon gjson.Result) {
	if orig.Raw == canon.Raw {
		return
	}
	if k.raws == nil {
		k.raws = map[string][]string{}
	}
	k.raws[canon.Raw] = append(k.raws[canon.Raw], orig.Raw)
	switch {
	case orig.IsArray() && canon.IsArray():
		o, c := orig.Array(), canon.Array()
		if len(o) == len(c) {
			for i := range o {
				k.pair(o[i], c[i])
			}
		}
	case orig.IsObject() && canon.IsObject():
		canon.ForEach(func(key, cv gjson.Result) bool {
			if _, ov, ok := findMember(orig, key.Str); ok {
				k.pair(ov, cv)
			}
			return true
		})
	}
}

// findMember finds key in object v as the codec does: exactly (the last
// one: in a map a repeated key's last value wins), else ignoring case.
func findMember(v gjson.Result, key string) (rawKey string, val gjson.Result, ok bool) {
	v.ForEach(func(k, x gjson.Result) bool {
		if k.Str == key {
			rawKey, val, ok = k.Raw, x, true
		}
		return true
	})
	if ok {
		return rawKey, val, ok
	}
	v.ForEach(func(k, x gjson.Result) bool {
		if strings.EqualFold(k.Str, key) {
			rawKey, val, ok = k.Raw, x, true
			return false
		}
		return true
	})
	return rawKey, val, ok
}

// restore appends canon with every part that was read restored to how it
// was read. orig is the member as read (its top object is merged with
// canon); known says which of orig's keys the codec owns ("" for an
// object whose keys are all data, such as annotations).
func (k *keeper) restore(dst []byte, canon, orig gjson.Result, known []string) []byte {
	if raws := k.raws[canon.Raw]; len(raws) > 0 {
		if k.used == nil {
			k.used = map[string]int{}
		}
		if i := k.used[canon.Raw]; i < len(raws) {
			k.used[canon.Raw] = i + 1
			return append(dst, raws[i]...)
		}
	}
	switch {
	case canon.IsObject() && orig.IsObject():
		return k.merge(dst, canon, orig, known)
	case canon.IsObject():
		dst = append(dst, '{')
		first := true
		canon.ForEach(func(key, v gjson.Result) bool {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(append(dst, key.Raw...), ':')
			dst = k.restore(dst, v, gjson.Result{}, nil)
			return true
		})
		return append(dst, '}')
	case canon.IsArray():
		dst = append(dst, '[')
		first := true
		canon.ForEach(func(_, v gjson.Result) bool {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = k.restore(dst, v, gjson.Result{}, nil)
			return true
		})
		return append(dst, ']')
	}
	return append(dst, canon.Raw...)
}

// merge writes the object orig as changed to canon: orig's members in
// their order, those the codec owns with canon's values (dropped when
// canon has none), the others as they were; then canon's new members.
func (k *keeper) merge(dst []byte, canon, orig gjson.Result, known []string) []byte {
	owned := func(key string) bool {
		if known == nil {
			return true
		}
		for _, n := range known {
			if strings.EqualFold(n, key) {
				return true
			}
		}
		return false
	}
	written := map[string]bool{}
	dst = append(dst, '{')
	first := true
	sep := func() {
		if !first {
			dst = append(dst, ',')
		}
		first = false
	}
	orig.ForEach(func(key, ov gjson.Result) bool {
		if !owned(key.Str) {
			sep()
			dst = append(append(append(dst, key.Raw...), ':'), ov.Raw...)
			return true
		}
		ckey, cv, ok := findMember(canon, key.Str)
		if !ok || written[ckey] {
			return true
		}
		written[ckey] = true
		sep()
		dst = append(append(dst, key.Raw...), ':')
		dst = k.restore(dst, cv, gjson.Result{}, nil)
		return true
	})
	canon.ForEach(func(key, cv gjson.Result) bool {
		if written[key.Raw] {
			return true
		}
		sep()
		dst = append(append(dst, key.Raw...), ':')
		dst = k.restore(dst, cv, gjson.Result{}, nil)
		return true
	})
	return append(dst, '}')
}
