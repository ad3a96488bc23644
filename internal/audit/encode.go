package audit

import (
	"sort"
	"strconv"

	"github.com/nvbind/nvbind/internal/jsonwrite"
)

// appendRecord writes r as JSON, members in the order of Record's fields,
// with the same names and omissions as encoding/json would use. Written by
// hand because encoding/json builds its reflection caches afresh in every
// process, which costs nvbind-runtime's create more than the rest of the
// audit together; verify and show decode with encoding/json.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, '{')
	b = appendKeyString(b, "time", r.Time, false)
	b = appendKeyString(b, "decision", r.Decision, true)
	b = appendKeyString(b, "container", r.Container, true)
	b = appendKeyString(b, "bundle", r.Bundle, true)
	b = append(b, `,"tenant":`...)
	b = appendTenant(b, &r.Tenant)
	b = append(b, `,"asked":`...)
	b = appendRequest(b, &r.Asked)
	if r.Granted != nil {
		b = append(b, `,"granted":`...)
		b = appendRequest(b, r.Granted)
	}
	b = appendKeyString(b, "rule", r.Rule, true)
	if r.Reason != "" {
		b = appendKeyString(b, "reason", r.Reason, true)
	}
	if len(r.Notes) > 0 {
		b = append(b, `,"notes":`...)
		b = appendStrings(b, r.Notes)
	}
	if r.Profile != "" {
		b = appendKeyString(b, "profile", r.Profile, true)
	}
	if r.Driver != "" {
		b = appendKeyString(b, "driverVersion", r.Driver, true)
	}
	b = appendKeyString(b, "configSha256Before", r.ConfigBefore, true)
	if r.ConfigAfter != "" {
		b = appendKeyString(b, "configSha256After", r.ConfigAfter, true)
	}
	b = appendKeyString(b, "prev", r.Prev, true)
	if r.Hash != "" {
		b = appendKeyString(b, "hash", r.Hash, true)
	}
	return append(b, '}')
}

func appendTenant(b []byte, t *Tenant) []byte {
	b = append(b, '{')
	b = appendKeyString(b, "key", t.Key, false)
	if t.Namespace != "" {
		b = appendKeyString(b, "namespace", t.Namespace, true)
	}
	if t.Pod != "" {
		b = appendKeyString(b, "pod", t.Pod, true)
	}
	b = appendKeyUint(b, "callerUid", t.CallerUID)
	b = appendKeyUint(b, "callerGid", t.CallerGID)
	b = appendKeyUint(b, "processUid", t.ProcessUID)
	b = appendKeyUint(b, "processGid", t.ProcessGID)
	b = append(b, `,"privileged":`...)
	b = strconv.AppendBool(b, t.Privileged)
	if t.Engine != "" {
		b = appendKeyString(b, "engine", t.Engine, true)
	}
	return append(b, '}')
}

func appendRequest(b []byte, r *Request) []byte {
	b = append(b, '{')
	first := true
	key := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = jsonwrite.AppendString(b, k)
		b = append(b, ':')
	}
	if r.Source != "" {
		key("source")
		b = jsonwrite.AppendString(b, r.Source)
	}
	for _, l := range []struct {
		k string
		v []string
	}{{"devices", r.Devices}, {"ignored", r.Ignored}, {"capabilities", r.Capabilities}} {
		if len(l.v) > 0 {
			key(l.k)
			b = appendStrings(b, l.v)
		}
	}
	if r.Profile != "" {
		key("profile")
		b = jsonwrite.AppendString(b, r.Profile)
	}
	if len(r.Params) > 0 {
		key("params")
		keys := make([]string, 0, len(r.Params))
		for k := range r.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys) // as encoding/json orders map keys
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonwrite.AppendString(b, k)
			b = append(b, ':')
			b = jsonwrite.AppendString(b, r.Params[k])
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendKeyString(b []byte, k, v string, comma bool) []byte {
	if comma {
		b = append(b, ',')
	}
	b = jsonwrite.AppendString(b, k)
	b = append(b, ':')
	return jsonwrite.AppendString(b, v)
}

func appendKeyUint(b []byte, k string, v uint32) []byte {
	b = append(b, ',')
	b = jsonwrite.AppendString(b, k)
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(v), 10)
}

func appendStrings(b []byte, l []string) []byte {
	b = append(b, '[')
	for i, s := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonwrite.AppendString(b, s)
	}
	return append(b, ']')
}
