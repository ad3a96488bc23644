package ledger

import (
	"strconv"
	"time"

	"github.com/nvbind/nvbind/internal/jsonwrite"
)

// encode.go writes an Entry as JSON by hand: encoding/json builds its
// encoder for a type on first use by reflection, which cost a fresh
// nvbind-runtime 0.1 ms, half the ledger's budget on the create path.
// Reading stays with encoding/json (TestEncodeRoundTrip keeps both in step).

func (e *Entry) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = jsonwrite.AppendString(b, e.ID)
	b = appendField(b, "runtime", e.Runtime)
	b = appendField(b, "root", e.Root)
	b = appendField(b, "bundle", e.Bundle)
	b = appendField(b, "tenant", e.Tenant)
	if e.Rule != "" {
		b = appendField(b, "rule", e.Rule)
	}
	if e.Profile != "" {
		b = appendField(b, "profile", e.Profile)
	}
	b = append(b, `,"devices":[`...)
	for i, d := range e.Devices {
		if i > 0 {
			b = append(b, ',')
		}
		b = d.appendJSON(b)
	}
	b = append(b, `],"created":"`...)
	b = e.Created.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","pid":`...)
	b = strconv.AppendInt(b, int64(e.PID), 10)
	return append(b, '}')
}

func (d *Device) appendJSON(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = jsonwrite.AppendString(b, d.Name)
	for _, f := range []struct{ k, v string }{{"index", d.Index}, {"uuid", d.UUID}, {"parent", d.Parent}} {
		if f.v != "" {
			b = appendField(b, f.k, f.v)
		}
	}
	if d.MIG {
		b = append(b, `,"mig":true`...)
	}
	if d.Exclusive {
		b = append(b, `,"exclusive":true`...)
	}
	return append(b, '}')
}

func appendField(b []byte, key, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return jsonwrite.AppendString(b, v)
}
