package ledger

import (
	"crypto/sha256"
	"fmt"
	"hash/fnv"
	"strings"
)

// names.go: an entry's file name is <id>@<tenant>@<dev>,<dev>....json,
// where <tenant> and each <dev> are 12-hex-digit FNV hashes (a device's
// followed by "x" when it is held exclusively). A create lists the
// directory and reads only the entries that may conflict with it; the
// check then runs on the entries read.

// idPart maps a container id to the start of its file name: ids runc
// accepts ([A-Za-z0-9_+.-], not starting with ".") are used as they are,
// anything else is hex-encoded so that no id can name a path outside the
// directory.
func idPart(id string) string {
	if id != "" && !strings.HasPrefix(id, ".") && safeID(id) && len(id) <= 128 {
		return id
	}
	if len(id) <= 64 {
		return fmt.Sprintf("x-%x", id)
	}
	return fmt.Sprintf("h-%x", sha256.Sum256([]byte(id)))
}

func safeID(id string) bool {
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// hash8 is a short hash of s: 12 hex digits (48 bits) of FNV-1a, so that
// counting a tenant's devices by their hashes is exact in practice.
func hash8(s string) string {
	h := fnv.New64a()
	h.Write([]byte(s))
	return fmt.Sprintf("%012x", h.Sum64()>>16)
}

// fileName is e's file name.
func fileName(e *Entry) string {
	devs := make([]string, 0, len(e.Devices))
	for _, d := range e.Devices {
		h := hash8(d.Key())
		if d.Exclusive {
			h += "x"
		}
		devs = append(devs, h)
	}
	id := idPart(e.ID)
	if len(id) > 100 || len(devs) > 16 {
		// Keep within NAME_MAX: such an entry is read by every create.
		return id + "@" + hash8(e.Tenant) + "@*.json"
	}
	return id + "@" + hash8(e.Tenant) + "@" + strings.Join(devs, ",") + ".json"
}

// name is a parsed file name.
type name struct {
	id, tenant string
	devs       []string // hashes without the "x"
	excl       []bool   // devs[i] is held exclusively
	any        bool     // "*": may share any device
}

func parseName(n string) name {
	n = strings.TrimSuffix(n, ".json")
	parts := strings.Split(n, "@")
	if len(parts) != 3 {
		return name{id: n, any: true}
	}
	p := name{id: parts[0], tenant: parts[1]}
	if parts[2] == "*" {
		p.any = true
		return p
	}
	for _, d := range strings.Split(parts[2], ",") {
		if d != "" {
			h, x := strings.CutSuffix(d, "x")
			p.devs = append(p.devs, h)
			p.excl = append(p.excl, x)
		}
	}
	return p
}

// conflictsWith reports whether p and o may conflict: they share a device
// that one of them holds exclusively.
func (p name) conflictsWith(o name) bool {
	if p.any || o.any {
		return true
	}
	for i, a := range p.devs {
		for j, b := range o.devs {
			if a == b && (p.excl[i] || o.excl[j]) {
				return true
			}
		}
	}
	return false
}

func (p name) sharesDevice(o name) bool {
	if p.any || o.any {
		return true
	}
	for _, a := range p.devs {
		for _, b := range o.devs {
			if a == b {
				return true
			}
		}
	}
	return false
}

// mayConflict reports whether p may conflict with the entries named
// others: an exclusive device in common, or (maxGPUs > 0) more distinct
// devices for p's tenant than the quota, counted by hash.
func (p name) mayConflict(others []string, maxGPUs int) bool {
	devs := map[string]bool{}
	for _, d := range p.devs {
		devs[d] = true
	}
	for _, n := range others {
		o := parseName(n)
		if p.conflictsWith(o) {
			return true
		}
		if maxGPUs > 0 && o.tenant == p.tenant {
			if o.any {
				return true
			}
			for _, d := range o.devs {
				devs[d] = true
			}
		}
	}
	return maxGPUs > 0 && len(devs) > maxGPUs
}
