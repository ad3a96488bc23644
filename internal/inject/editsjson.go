package inject

import (
	"os"

	"github.com/tidwall/gjson"
	cdispec "tags.cncf.io/container-device-interface/specs-go"

	"github.com/nvbind/nvbind/internal/jsonread"
)

// editsjson.go decodes the containerEdits of a JSON CDI spec with
// jsonread rather than encoding/json, whose cold reflection caches cost
// more than all the rest of reading an 8-GPU spec. Decoding is strict:
// unknown fields, a field given twice, wrong types and null list elements
// are refused. FuzzDecodeEdits checks that whatever it accepts,
// encoding/json decodes to the same edits.

var (
	editsFields     = []string{"env", "deviceNodes", "netDevices", "hooks", "mounts", "intelRdt", "additionalGids"}
	deviceFields    = []string{"path", "hostPath", "type", "major", "minor", "fileMode", "permissions", "uid", "gid"}
	netDeviceFields = []string{"hostInterfaceName", "name"}
	hookFields      = []string{"hookName", "path", "args", "env", "timeout"}
	mountFields     = []string{"hostPath", "containerPath", "options", "type"}
	intelRdtFields  = []string{"closID", "l3CacheSchema", "memBwSchema", "schemata", "enableMonitoring"}
)

// decodeEdits decodes one containerEdits object.
func decodeEdits(raw string) (cdispec.ContainerEdits, error) {
	var e cdispec.ContainerEdits
	d := &editsReader{jsonread.Reader{Strict: true}}
	d.Object(gjson.Parse(raw), "containerEdits", editsFields, func(i int, v gjson.Result) {
		switch i {
		case 0:
			e.Env = d.Strings(v, "env")
		case 1:
			e.DeviceNodes = jsonread.List(&d.Reader, v, "deviceNodes", d.deviceNode)
		case 2:
			e.NetDevices = jsonread.List(&d.Reader, v, "netDevices", d.netDevice)
		case 3:
			e.Hooks = jsonread.List(&d.Reader, v, "hooks", d.hook)
		case 4:
			e.Mounts = jsonread.List(&d.Reader, v, "mounts", d.mount)
		case 5:
			e.IntelRdt = d.intelRdt(v)
		case 6:
			e.AdditionalGIDs = jsonread.List(&d.Reader, v, "additionalGids",
				func(v gjson.Result) uint32 { return d.Uint32(v, "additionalGids") })
		}
	})
	return e, d.Err
}

type editsReader struct{ jsonread.Reader }

func (d *editsReader) deviceNode(v gjson.Result) *cdispec.DeviceNode {
	n := &cdispec.DeviceNode{}
	d.Object(v, "deviceNodes", deviceFields, func(i int, v gjson.Result) {
		what := deviceFields[i]
		switch i {
		case 0:
			n.Path = d.String(v, what)
		case 1:
			n.HostPath = d.String(v, what)
		case 2:
			n.Type = d.String(v, what)
		case 3:
			n.Major = d.Int(v, what, 64)
		case 4:
			n.Minor = d.Int(v, what, 64)
		case 5:
			if m := d.Uint32Ptr(v, what); m != nil {
				mode := os.FileMode(*m)
				n.FileMode = &mode
			}
		case 6:
			n.Permissions = d.String(v, what)
		case 7:
			n.UID = d.Uint32Ptr(v, what)
		case 8:
			n.GID = d.Uint32Ptr(v, what)
		}
	})
	return n
}

func (d *editsReader) netDevice(v gjson.Result) *cdispec.LinuxNetDevice {
	n := &cdispec.LinuxNetDevice{}
	d.Object(v, "netDevices", netDeviceFields, func(i int, v gjson.Result) {
		if i == 0 {
			n.HostInterfaceName = d.String(v, netDeviceFields[i])
		} else {
			n.Name = d.String(v, netDeviceFields[i])
		}
	})
	return n
}

func (d *editsReader) hook(v gjson.Result) *cdispec.Hook {
	h := &cdispec.Hook{}
	d.Object(v, "hooks", hookFields, func(i int, v gjson.Result) {
		what := hookFields[i]
		switch i {
		case 0:
			h.HookName = d.String(v, what)
		case 1:
			h.Path = d.String(v, what)
		case 2:
			h.Args = d.Strings(v, what)
		case 3:
			h.Env = d.Strings(v, what)
		case 4:
			h.Timeout = d.IntPtr(v, what)
		}
	})
	return h
}

func (d *editsReader) mount(v gjson.Result) *cdispec.Mount {
	m := &cdispec.Mount{}
	d.Object(v, "mounts", mountFields, func(i int, v gjson.Result) {
		what := mountFields[i]
		switch i {
		case 0:
			m.HostPath = d.String(v, what)
		case 1:
			m.ContainerPath = d.String(v, what)
		case 2:
			m.Options = d.Strings(v, what)
		case 3:
			m.Type = d.String(v, what)
		}
	})
	return m
}

func (d *editsReader) intelRdt(v gjson.Result) *cdispec.IntelRdt {
	if v.Type == gjson.Null {
		return nil
	}
	r := &cdispec.IntelRdt{}
	d.Object(v, "intelRdt", intelRdtFields, func(i int, v gjson.Result) {
		what := intelRdtFields[i]
		switch i {
		case 0:
			r.ClosID = d.String(v, what)
		case 1:
			r.L3CacheSchema = d.String(v, what)
		case 2:
			r.MemBwSchema = d.String(v, what)
		case 3:
			r.Schemata = d.Strings(v, what)
		case 4:
			r.EnableMonitoring = d.Bool(v, what)
		}
	})
	return r
}
