package ledger

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// encode.go writes an Entry as JSON by hand: encoding/json builds its
// encoder for a type on first use by reflection, which cost a fresh
// nvbind-runtime 0.1 ms, half the ledger's budget on the create path.
// Reading stays with encoding/json (TestEncodeRoundTrip keeps both in step).

func (e *Entry) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
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
	b = appendString(b, d.Name)
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
	return appendString(b, v)
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
