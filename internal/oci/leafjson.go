package oci

import (
	"encoding/json"
	"os"
	"sort"
	"strconv"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tidwall/gjson"

	"github.com/nvbind/nvbind/internal/jsonread"
	"github.com/nvbind/nvbind/internal/jsonwrite"
)

// leafjson.go decodes and encodes the config.json members nvbind edits
// (env, annotations, user, rlimits, mounts, hooks, linux devices and
// device cgroup rules) with jsonread and appends, not encoding/json.
// nvbind-runtime runs once per create, so encoding/json's reflection
// caches are always cold, and building them cost more than the rest of
// reading and writing the spec.
// Decoding follows encoding/json into runtime-spec types, as runc reads
// the file (keys match case-insensitively, unknown keys are ignored, null
// is a zero value), except that it refuses a key given twice in one object
// and strings that are not UTF-8, where encoding/json would merge or
// replace. Encoding gives encoding/json's bytes. FuzzLeafCodec checks both
// against encoding/json.

// Readers and writers of the members, by type.
var (
	readEnv         = func(r *leafReader, v gjson.Result) []string { return r.Strings(v, "env") }
	readAnnotations = func(r *leafReader, v gjson.Result) map[string]string { return r.StringMap(v, "annotations") }
	readUser        = (*leafReader).user
	readRlimits     = func(r *leafReader, v gjson.Result) []rspec.POSIXRlimit {
		return jsonread.List(&r.Reader, v, "rlimits", r.rlimit)
	}
	readMounts = func(r *leafReader, v gjson.Result) []rspec.Mount {
		return jsonread.List(&r.Reader, v, "mounts", r.mount)
	}
	readHooks   = (*leafReader).hooks
	readDevices = func(r *leafReader, v gjson.Result) []rspec.LinuxDevice {
		return jsonread.List(&r.Reader, v, "devices", r.device)
	}
	readRules = func(r *leafReader, v gjson.Result) []rspec.LinuxDeviceCgroup {
		return jsonread.List(&r.Reader, v, "devices", r.deviceRule)
	}
	writeRlimits = func(b []byte, l []rspec.POSIXRlimit) []byte { return appendList(b, l, appendRlimit) }
	writeMounts  = func(b []byte, l []rspec.Mount) []byte { return appendList(b, l, appendMount) }
	writeDevices = func(b []byte, l []rspec.LinuxDevice) []byte { return appendList(b, l, appendDevice) }
	writeRules   = func(b []byte, l []rspec.LinuxDeviceCgroup) []byte { return appendList(b, l, appendDeviceRule) }
)

// leafReader reads the runtime-spec types nvbind edits.
type leafReader struct{ jsonread.Reader }

var (
	userFields    = []string{"uid", "gid", "umask", "additionalGids", "username"}
	rlimitFields  = []string{"type", "hard", "soft"}
	mountFields   = []string{"destination", "type", "source", "options", "uidMappings", "gidMappings"}
	idMapFields   = []string{"containerID", "hostID", "size"}
	hookFields    = []string{"path", "args", "env", "timeout"}
	hooksFields   = []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
	deviceFields  = []string{"path", "type", "major", "minor", "fileMode", "uid", "gid"}
	devRuleFields = []string{"allow", "type", "major", "minor", "access"}
)

func (r *leafReader) user(v gjson.Result) (u rspec.User) {
	r.Object(v, "user", userFields, func(i int, v gjson.Result) {
		switch i {
		case 0:
			u.UID = r.Uint32(v, "uid")
		case 1:
			u.GID = r.Uint32(v, "gid")
		case 2:
			u.Umask = r.Uint32Ptr(v, "umask")
		case 3:
			u.AdditionalGids = jsonread.List(&r.Reader, v, "additionalGids", func(v gjson.Result) uint32 { return r.Uint32(v, "additionalGids") })
		case 4:
			u.Username = r.String(v, "username")
		}
	})
	return u
}

func (r *leafReader) rlimit(v gjson.Result) (l rspec.POSIXRlimit) {
	r.Object(v, "rlimits", rlimitFields, func(i int, v gjson.Result) {
		switch i {
		case 0:
			l.Type = r.String(v, "type")
		case 1:
			l.Hard = r.Uint(v, "hard", 64)
		case 2:
			l.Soft = r.Uint(v, "soft", 64)
		}
	})
	return l
}

func (r *leafReader) idMapping(v gjson.Result) (m rspec.LinuxIDMapping) {
	r.Object(v, "idMappings", idMapFields, func(i int, v gjson.Result) {
		n := r.Uint32(v, idMapFields[i])
		switch i {
		case 0:
			m.ContainerID = n
		case 1:
			m.HostID = n
		case 2:
			m.Size = n
		}
	})
	return m
}

func (r *leafReader) mount(v gjson.Result) (m rspec.Mount) {
	r.Object(v, "mounts", mountFields, func(i int, v gjson.Result) {
		switch i {
		case 0:
			m.Destination = r.String(v, "destination")
		case 1:
			m.Type = r.String(v, "type")
		case 2:
			m.Source = r.String(v, "source")
		case 3:
			m.Options = r.Strings(v, "options")
		case 4:
			m.UIDMappings = jsonread.List(&r.Reader, v, "uidMappings", r.idMapping)
		case 5:
			m.GIDMappings = jsonread.List(&r.Reader, v, "gidMappings", r.idMapping)
		}
	})
	return m
}

func (r *leafReader) hook(v gjson.Result) (h rspec.Hook) {
	r.Object(v, "hooks", hookFields, func(i int, v gjson.Result) {
		switch i {
		case 0:
			h.Path = r.String(v, "path")
		case 1:
			h.Args = r.Strings(v, "args")
		case 2:
			h.Env = r.Strings(v, "env")
		case 3:
			h.Timeout = r.IntPtr(v, "timeout")
		}
	})
	return h
}

func (r *leafReader) hooks(v gjson.Result) *rspec.Hooks {
	if v.Type == gjson.Null {
		return nil
	}
	h := &rspec.Hooks{}
	lists := hookLists(h)
	r.Object(v, "hooks", hooksFields, func(i int, v gjson.Result) {
		*lists[i] = jsonread.List(&r.Reader, v, hooksFields[i], r.hook)
	})
	return h
}

func (r *leafReader) device(v gjson.Result) (d rspec.LinuxDevice) {
	r.Object(v, "devices", deviceFields, func(i int, v gjson.Result) {
		switch i {
		case 0:
			d.Path = r.String(v, "path")
		case 1:
			d.Type = r.String(v, "type")
		case 2:
			d.Major = r.Int(v, "major", 64)
		case 3:
			d.Minor = r.Int(v, "minor", 64)
		case 4:
			if m := r.Uint32Ptr(v, "fileMode"); m != nil {
				mode := os.FileMode(*m)
				d.FileMode = &mode
			}
		case 5:
			d.UID = r.Uint32Ptr(v, "uid")
		case 6:
			d.GID = r.Uint32Ptr(v, "gid")
		}
	})
	return d
}

func (r *leafReader) deviceRule(v gjson.Result) (c rspec.LinuxDeviceCgroup) {
	r.Object(v, "devices", devRuleFields, func(i int, v gjson.Result) {
		switch i {
		case 0:
			c.Allow = r.Bool(v, "allow")
		case 1:
			c.Type = r.String(v, "type")
		case 2:
			c.Major = r.Int64Ptr(v, "major")
		case 3:
			c.Minor = r.Int64Ptr(v, "minor")
		case 4:
			c.Access = r.String(v, "access")
		}
	})
	return c
}

// hookLists returns the hook lists in hooksFields' order.
func hookLists(h *rspec.Hooks) []*[]rspec.Hook {
	return []*[]rspec.Hook{&h.Prestart, &h.CreateRuntime, &h.CreateContainer, &h.StartContainer, &h.Poststart, &h.Poststop}
}

// Encoding: each function appends what json.Marshal gives for its type.

// appendKey starts a member: the separator unless first, then "key":.
func appendKey(dst []byte, first bool, key string) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// appendList appends a slice as encoding/json does: null when nil.
func appendList[T any](dst []byte, list []T, elem func([]byte, T) []byte) []byte {
	if list == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, v := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = elem(dst, v)
	}
	return append(dst, ']')
}

func appendStrings(dst []byte, list []string) []byte {
	return appendList(dst, list, jsonwrite.AppendString)
}

func appendUint32(dst []byte, n uint32) []byte { return strconv.AppendUint(dst, uint64(n), 10) }

func appendStringMap(dst []byte, m map[string]string) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(jsonwrite.AppendString(dst, k), ':')
		dst = jsonwrite.AppendString(dst, m[k])
	}
	return append(dst, '}')
}

func appendUser(dst []byte, u rspec.User) []byte {
	dst = appendUint32(appendKey(append(dst, '{'), true, "uid"), u.UID)
	dst = appendUint32(appendKey(dst, false, "gid"), u.GID)
	if u.Umask != nil {
		dst = appendUint32(appendKey(dst, false, "umask"), *u.Umask)
	}
	if len(u.AdditionalGids) > 0 {
		dst = appendList(appendKey(dst, false, "additionalGids"), u.AdditionalGids, appendUint32)
	}
	if u.Username != "" {
		dst = jsonwrite.AppendString(appendKey(dst, false, "username"), u.Username)
	}
	return append(dst, '}')
}

func appendRlimit(dst []byte, l rspec.POSIXRlimit) []byte {
	dst = jsonwrite.AppendString(appendKey(append(dst, '{'), true, "type"), l.Type)
	dst = strconv.AppendUint(appendKey(dst, false, "hard"), l.Hard, 10)
	dst = strconv.AppendUint(appendKey(dst, false, "soft"), l.Soft, 10)
	return append(dst, '}')
}

func appendIDMapping(dst []byte, m rspec.LinuxIDMapping) []byte {
	dst = appendUint32(appendKey(append(dst, '{'), true, "containerID"), m.ContainerID)
	dst = appendUint32(appendKey(dst, false, "hostID"), m.HostID)
	dst = appendUint32(appendKey(dst, false, "size"), m.Size)
	return append(dst, '}')
}

func appendMount(dst []byte, m rspec.Mount) []byte {
	dst = jsonwrite.AppendString(appendKey(append(dst, '{'), true, "destination"), m.Destination)
	if m.Type != "" {
		dst = jsonwrite.AppendString(appendKey(dst, false, "type"), m.Type)
	}
	if m.Source != "" {
		dst = jsonwrite.AppendString(appendKey(dst, false, "source"), m.Source)
	}
	if len(m.Options) > 0 {
		dst = appendStrings(appendKey(dst, false, "options"), m.Options)
	}
	if len(m.UIDMappings) > 0 {
		dst = appendList(appendKey(dst, false, "uidMappings"), m.UIDMappings, appendIDMapping)
	}
	if len(m.GIDMappings) > 0 {
		dst = appendList(appendKey(dst, false, "gidMappings"), m.GIDMappings, appendIDMapping)
	}
	return append(dst, '}')
}

func appendHook(dst []byte, h rspec.Hook) []byte {
	dst = jsonwrite.AppendString(appendKey(append(dst, '{'), true, "path"), h.Path)
	if len(h.Args) > 0 {
		dst = appendStrings(appendKey(dst, false, "args"), h.Args)
	}
	if len(h.Env) > 0 {
		dst = appendStrings(appendKey(dst, false, "env"), h.Env)
	}
	if h.Timeout != nil {
		dst = strconv.AppendInt(appendKey(dst, false, "timeout"), int64(*h.Timeout), 10)
	}
	return append(dst, '}')
}

func appendHooks(dst []byte, h *rspec.Hooks) []byte {
	if h == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '{')
	first := true
	for i, list := range hookLists(h) {
		if len(*list) > 0 {
			dst = appendList(appendKey(dst, first, hooksFields[i]), *list, appendHook)
			first = false
		}
	}
	return append(dst, '}')
}

func appendDevice(dst []byte, d rspec.LinuxDevice) []byte {
	dst = jsonwrite.AppendString(appendKey(append(dst, '{'), true, "path"), d.Path)
	dst = jsonwrite.AppendString(appendKey(dst, false, "type"), d.Type)
	dst = strconv.AppendInt(appendKey(dst, false, "major"), d.Major, 10)
	dst = strconv.AppendInt(appendKey(dst, false, "minor"), d.Minor, 10)
	if d.FileMode != nil {
		dst = appendUint32(appendKey(dst, false, "fileMode"), uint32(*d.FileMode))
	}
	if d.UID != nil {
		dst = appendUint32(appendKey(dst, false, "uid"), *d.UID)
	}
	if d.GID != nil {
		dst = appendUint32(appendKey(dst, false, "gid"), *d.GID)
	}
	return append(dst, '}')
}

func appendDeviceRule(dst []byte, c rspec.LinuxDeviceCgroup) []byte {
	dst = strconv.AppendBool(appendKey(append(dst, '{'), true, "allow"), c.Allow)
	if c.Type != "" {
		dst = jsonwrite.AppendString(appendKey(dst, false, "type"), c.Type)
	}
	if c.Major != nil {
		dst = strconv.AppendInt(appendKey(dst, false, "major"), *c.Major, 10)
	}
	if c.Minor != nil {
		dst = strconv.AppendInt(appendKey(dst, false, "minor"), *c.Minor, 10)
	}
	if c.Access != "" {
		dst = jsonwrite.AppendString(appendKey(dst, false, "access"), c.Access)
	}
	return append(dst, '}')
}

// leafCodec decodes a member into its field and encodes the field back.
type leafCodec struct {
	decode func(v gjson.Result) error
	encode func(dst []byte) ([]byte, error)
}

// leaf makes the codec of a field from its reader and writer.
func leaf[T any](ptr *T, read func(*leafReader, gjson.Result) T, write func([]byte, T) []byte) leafCodec {
	return leafCodec{
		decode: func(v gjson.Result) error {
			r := &leafReader{}
			x := read(r, v)
			if r.Err == nil {
				*ptr = x
			}
			return r.Err
		},
		encode: func(dst []byte) ([]byte, error) { return write(dst, *ptr), nil },
	}
}

// jsonLeaf decodes and encodes a rarely present member with
// encoding/json: its cold cost is only paid when a spec has it.
func jsonLeaf(ptr any) leafCodec {
	return leafCodec{
		decode: func(v gjson.Result) error { return json.Unmarshal([]byte(v.Raw), ptr) },
		encode: func(dst []byte) ([]byte, error) {
			raw, err := json.Marshal(ptr)
			return append(dst, raw...), err
		},
	}
}
