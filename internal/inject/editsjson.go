package inject

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/tidwall/gjson"
	cdispec "tags.cncf.io/container-device-interface/specs-go"
)

// editsjson.go decodes the containerEdits of a JSON CDI spec from gjson
// values, without encoding/json: a create decodes edits once per process,
// so encoding/json's reflection caches are always cold, and building them
// cost more than all the rest of reading an 8-GPU spec. The decoding is
// strict (unknown fields, wrong types and null list elements are refused)
// and FuzzDecodeEdits checks that whatever it accepts, encoding/json
// decodes to the same edits.

// decodeEdits decodes one containerEdits object.
func decodeEdits(raw string) (cdispec.ContainerEdits, error) {
	var e cdispec.ContainerEdits
	d := &editsDecoder{}
	d.object(gjson.Parse(raw), "containerEdits", func(key string, v gjson.Result) bool {
		switch key {
		case "env":
			e.Env = d.strings(v, key)
		case "deviceNodes":
			e.DeviceNodes = listOf(d, v, key, d.deviceNode)
		case "netDevices":
			e.NetDevices = listOf(d, v, key, d.netDevice)
		case "hooks":
			e.Hooks = listOf(d, v, key, d.hook)
		case "mounts":
			e.Mounts = listOf(d, v, key, d.mount)
		case "intelRdt":
			e.IntelRdt = d.intelRdt(v)
		case "additionalGids":
			e.AdditionalGIDs = listOf(d, v, key, func(v gjson.Result) uint32 { return d.uint32(v, key) })
		default:
			return false
		}
		return true
	})
	return e, d.err
}

// editsDecoder keeps the first error; later calls are then no-ops.
type editsDecoder struct{ err error }

func (d *editsDecoder) fail(what string, v gjson.Result, want string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: %.32s is not %s", what, v.Raw, want)
	}
}

// object calls field for each member of v; field returns false for a key
// it does not know. null is an absent object. A key given twice is
// refused: encoding/json would merge the two values.
func (d *editsDecoder) object(v gjson.Result, what string, field func(key string, v gjson.Result) bool) {
	if d.err != nil || v.Type == gjson.Null {
		return
	}
	if !v.IsObject() {
		d.fail(what, v, "an object")
		return
	}
	var seen []string
	v.ForEach(func(k, v gjson.Result) bool {
		switch {
		case slices.Contains(seen, k.Str):
			d.err = fmt.Errorf("%s: field %q given twice", what, k.Str)
		case !field(k.Str, v) && d.err == nil:
			d.err = fmt.Errorf("%s: unknown field %q", what, k.Str)
		}
		seen = append(seen, k.Str)
		return d.err == nil
	})
}

// listOf decodes a list with elem; null is a nil list, [] an empty one,
// as in encoding/json.
func listOf[T any](d *editsDecoder, v gjson.Result, what string, elem func(gjson.Result) T) []T {
	if d.err != nil || v.Type == gjson.Null {
		return nil
	}
	out := []T{}
	d.list(v, what, func(v gjson.Result) { out = append(out, elem(v)) })
	return out
}

// list calls elem for each element of v, refusing nulls; null is an
// empty list.
func (d *editsDecoder) list(v gjson.Result, what string, elem func(gjson.Result)) {
	if d.err != nil || v.Type == gjson.Null {
		return
	}
	if !v.IsArray() {
		d.fail(what, v, "a list")
		return
	}
	v.ForEach(func(_, v gjson.Result) bool {
		if v.Type == gjson.Null {
			d.fail(what, v, "an element")
		} else {
			elem(v)
		}
		return d.err == nil
	})
}

// string decodes a string; null is "" as in encoding/json.
func (d *editsDecoder) string(v gjson.Result, what string) string {
	if d.err != nil || v.Type == gjson.Null {
		return ""
	}
	if v.Type != gjson.String || !utf8.ValidString(v.Str) {
		d.fail(what, v, "a UTF-8 string")
		return ""
	}
	return v.Str
}

func (d *editsDecoder) strings(v gjson.Result, what string) []string {
	return listOf(d, v, what, func(v gjson.Result) string { return d.string(v, what) })
}

func (d *editsDecoder) uint(v gjson.Result, what string, bits int) uint64 {
	if d.err != nil || v.Type == gjson.Null {
		return 0
	}
	n, err := strconv.ParseUint(v.Raw, 10, bits)
	if v.Type != gjson.Number || err != nil {
		d.fail(what, v, fmt.Sprintf("a %d-bit unsigned integer", bits))
	}
	return n
}

func (d *editsDecoder) uint32(v gjson.Result, what string) uint32 {
	return uint32(d.uint(v, what, 32))
}

func (d *editsDecoder) uint32Ptr(v gjson.Result, what string) *uint32 {
	if v.Type == gjson.Null {
		return nil
	}
	n := d.uint32(v, what)
	return &n
}

func (d *editsDecoder) int64(v gjson.Result, what string) int64 {
	if d.err != nil || v.Type == gjson.Null {
		return 0
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	if v.Type != gjson.Number || err != nil {
		d.fail(what, v, "a 64-bit integer")
	}
	return n
}

func (d *editsDecoder) deviceNode(v gjson.Result) *cdispec.DeviceNode {
	n := &cdispec.DeviceNode{}
	d.object(v, "deviceNodes", func(key string, v gjson.Result) bool {
		switch key {
		case "path":
			n.Path = d.string(v, key)
		case "hostPath":
			n.HostPath = d.string(v, key)
		case "type":
			n.Type = d.string(v, key)
		case "major":
			n.Major = d.int64(v, key)
		case "minor":
			n.Minor = d.int64(v, key)
		case "fileMode":
			if v.Type != gjson.Null {
				mode := os.FileMode(d.uint32(v, key))
				n.FileMode = &mode
			}
		case "permissions":
			n.Permissions = d.string(v, key)
		case "uid":
			n.UID = d.uint32Ptr(v, key)
		case "gid":
			n.GID = d.uint32Ptr(v, key)
		default:
			return false
		}
		return true
	})
	return n
}

func (d *editsDecoder) netDevice(v gjson.Result) *cdispec.LinuxNetDevice {
	n := &cdispec.LinuxNetDevice{}
	d.object(v, "netDevices", func(key string, v gjson.Result) bool {
		switch key {
		case "hostInterfaceName":
			n.HostInterfaceName = d.string(v, key)
		case "name":
			n.Name = d.string(v, key)
		default:
			return false
		}
		return true
	})
	return n
}

func (d *editsDecoder) hook(v gjson.Result) *cdispec.Hook {
	h := &cdispec.Hook{}
	d.object(v, "hooks", func(key string, v gjson.Result) bool {
		switch key {
		case "hookName":
			h.HookName = d.string(v, key)
		case "path":
			h.Path = d.string(v, key)
		case "args":
			h.Args = d.strings(v, key)
		case "env":
			h.Env = d.strings(v, key)
		case "timeout":
			if v.Type != gjson.Null {
				t := int(d.int64(v, key))
				h.Timeout = &t
			}
		default:
			return false
		}
		return true
	})
	return h
}

func (d *editsDecoder) mount(v gjson.Result) *cdispec.Mount {
	m := &cdispec.Mount{}
	d.object(v, "mounts", func(key string, v gjson.Result) bool {
		switch key {
		case "hostPath":
			m.HostPath = d.string(v, key)
		case "containerPath":
			m.ContainerPath = d.string(v, key)
		case "options":
			m.Options = d.strings(v, key)
		case "type":
			m.Type = d.string(v, key)
		default:
			return false
		}
		return true
	})
	return m
}

func (d *editsDecoder) intelRdt(v gjson.Result) *cdispec.IntelRdt {
	if v.Type == gjson.Null {
		return nil
	}
	r := &cdispec.IntelRdt{}
	d.object(v, "intelRdt", func(key string, v gjson.Result) bool {
		switch key {
		case "closID":
			r.ClosID = d.string(v, key)
		case "l3CacheSchema":
			r.L3CacheSchema = d.string(v, key)
		case "memBwSchema":
			r.MemBwSchema = d.string(v, key)
		case "schemata":
			r.Schemata = d.strings(v, key)
		case "enableMonitoring":
			switch v.Type {
			case gjson.True, gjson.False:
				r.EnableMonitoring = v.Bool()
			case gjson.Null:
			default:
				d.fail(key, v, "a boolean")
			}
		default:
			return false
		}
		return true
	})
	return r
}
