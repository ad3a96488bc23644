package policy

import (
	"errors"
	"fmt"
	"os/user"
	"path"
	"strconv"
	"strings"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/request"
)

// rule is a compiled [[policy.rules]] entry.
type rule struct {
	name  string
	match matcher
	allow allow
}

// idRange is an inclusive uid/gid range.
type idRange struct{ lo, hi uint32 }

type matcher struct {
	namespaces, pods []string
	callerUIDs       []idRange
	callerGroups     []idRange
	processUIDs      []idRange
	processGIDs      []idRange
	privileged       *bool
	engines          []string
	annotations      map[string]string
}

// allow is what a rule grants, every key filled in (from the preset's
// defaults where the rule leaves it out).
type allow struct {
	anyDevice    bool
	anyMIG       bool
	devices      map[string]bool
	maxDevices   int
	kinds        map[string]bool
	allCaps      bool
	caps         map[string]bool
	profiles     []string // names or "*"
	params       []string // names or "*"
	envRequests  bool
	pathPrefixes []string // may hold <uid>
	deviceParams bool
	maxGPUs      int
	exclusiveAll bool
	exclusive    map[string]bool // indices, UUIDs, gpu:mig pairs
}

// Engines a rule may name.
var engines = []string{"containerd", "cri-o", "docker", "podman"}

// Limits on rule lists.
const maxList = 256

// offRule is the one rule of a policy that is off: everything is allowed
// but what the always-on rules forbid.
func offRule() *rule {
	return &rule{name: "default", allow: allow{anyDevice: true, allCaps: true, profiles: []string{"*"},
		params: []string{"*"}, envRequests: true, pathPrefixes: []string{"/"}, deviceParams: true}}
}

func compileRule(rc config.PolicyRule, defaults config.PolicyAllow, fallbackName string) (*rule, error) {
	r := &rule{name: rc.Name}
	if r.name == "" {
		r.name = fallbackName
	} else if err := checkToken("name", r.name); err != nil {
		return nil, err
	}
	var err error
	if r.match, err = compileMatch(rc.Match); err != nil {
		return nil, err
	}
	if r.allow, err = compileAllow(merge(rc.Allow, defaults)); err != nil {
		return nil, err
	}
	return r, nil
}

func compileMatch(m config.PolicyMatch) (matcher, error) {
	var out matcher
	var err error
	for _, l := range []struct {
		key  string
		list []string
		dst  *[]string
	}{{"match.namespaces", m.Namespaces, &out.namespaces}, {"match.pods", m.Pods, &out.pods}} {
		if len(l.list) > maxList {
			return out, fmt.Errorf("%s: more than %d entries", l.key, maxList)
		}
		for _, g := range l.list {
			if _, err := path.Match(g, ""); err != nil || g == "" || len(g) > 253 {
				return out, fmt.Errorf("%s: %q is not a glob", l.key, g)
			}
		}
		*l.dst = l.list
	}
	if out.callerUIDs, err = idRanges("match.caller-uids", m.CallerUIDs, nil); err != nil {
		return out, err
	}
	if out.callerGroups, err = idRanges("match.caller-groups", m.CallerGroups, lookupGroup); err != nil {
		return out, err
	}
	if out.processUIDs, err = idRanges("match.process-uids", m.ProcessUIDs, nil); err != nil {
		return out, err
	}
	if out.processGIDs, err = idRanges("match.process-gids", m.ProcessGIDs, nil); err != nil {
		return out, err
	}
	out.privileged = m.Privileged
	for _, e := range m.Engines {
		if !contains(engines, e) {
			return out, fmt.Errorf("match.engines: %q is not one of %s", e, strings.Join(engines, ", "))
		}
	}
	out.engines = m.Engines
	if len(m.Annotations) > maxList {
		return out, fmt.Errorf("match.annotations: more than %d entries", maxList)
	}
	for k := range m.Annotations {
		if k == "" || len(k) > 253 || strings.ContainsAny(k, " \t\n\x00") {
			return out, fmt.Errorf("match.annotations: %q is not an annotation key", k)
		}
	}
	out.annotations = m.Annotations
	return out, nil
}

// lookupGroup resolves a group name; a variable so that tests can stand
// in for /etc/group.
var lookupGroup = lookupEtcGroup

// lookupEtcGroup resolves a group name in /etc/group (never NSS: the
// runtime is static).
func lookupEtcGroup(name string) (uint32, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", name, err)
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	return uint32(n), err
}

// idRanges reads "1000", "1000-1999" and, when byName is set, names.
func idRanges(key string, list []string, byName func(string) (uint32, error)) ([]idRange, error) {
	if len(list) > maxList {
		return nil, fmt.Errorf("%s: more than %d entries", key, maxList)
	}
	var out []idRange
	for _, s := range list {
		lo, hi, isRange := strings.Cut(s, "-")
		a, errA := strconv.ParseUint(lo, 10, 32)
		b, errB := a, error(nil)
		if isRange {
			b, errB = strconv.ParseUint(hi, 10, 32)
		}
		switch {
		case errA == nil && errB == nil && a <= b:
			out = append(out, idRange{uint32(a), uint32(b)})
		case byName != nil && checkToken(key, s) == nil:
			id, err := byName(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			out = append(out, idRange{id, id})
		default:
			return nil, fmt.Errorf("%s: %q is not an id or a range like 1000-1999", key, s)
		}
	}
	return out, nil
}

// merge fills the keys a rule leaves out from the preset's defaults.
func merge(a, d config.PolicyAllow) config.PolicyAllow {
	if a.Devices == nil {
		a.Devices = d.Devices
	}
	if a.MaxDevices == nil {
		a.MaxDevices = d.MaxDevices
	}
	if a.Kinds == nil {
		a.Kinds = d.Kinds
	}
	if a.Capabilities == nil {
		a.Capabilities = d.Capabilities
	}
	if a.Profiles == nil {
		a.Profiles = d.Profiles
	}
	if a.Params == nil {
		a.Params = d.Params
	}
	if a.EnvRequests == nil {
		a.EnvRequests = d.EnvRequests
	}
	if a.PathPrefixes == nil {
		a.PathPrefixes = d.PathPrefixes
	}
	if a.DeviceParams == nil {
		a.DeviceParams = d.DeviceParams
	}
	if a.MaxGPUs == nil {
		a.MaxGPUs = d.MaxGPUs
	}
	if a.Exclusive == nil {
		a.Exclusive = d.Exclusive
	}
	return a
}

func compileAllow(a config.PolicyAllow) (allow, error) {
	out := allow{devices: map[string]bool{}, kinds: map[string]bool{}, caps: map[string]bool{}}
	for _, l := range [][]string{a.Devices, a.Kinds, a.Capabilities, a.Profiles, a.Params, a.PathPrefixes} {
		if len(l) > maxList {
			return out, fmt.Errorf("allow: a list has more than %d entries", maxList)
		}
	}
	for _, d := range a.Devices {
		switch {
		case d == "all":
			out.anyDevice = true
		case d == "mig":
			out.anyMIG = true
		default:
			// The same strict check as NVIDIA_VISIBLE_DEVICES entries.
			r, err := request.Parse([]string{request.EnvVisibleDevices + "=" + d}, nil, "x.com/y")
			if err != nil || r == nil || strings.Contains(d, ",") || d == "none" {
				return out, fmt.Errorf("allow.devices: %q is not all, mig, an index, a GPU-/MIG- UUID or a gpu:mig pair", d)
			}
			out.devices[d] = true
		}
	}
	if a.MaxDevices != nil {
		if *a.MaxDevices < 0 || *a.MaxDevices > 4096 {
			return out, fmt.Errorf("allow.max-devices %d is not between 0 (no limit) and 4096", *a.MaxDevices)
		}
		out.maxDevices = *a.MaxDevices
	}
	for _, k := range a.Kinds {
		if v, c, ok := strings.Cut(k, "/"); !ok || checkToken("allow.kinds", v) != nil || checkToken("allow.kinds", c) != nil || strings.Contains(c, "/") {
			return out, fmt.Errorf("allow.kinds: %q is not a CDI kind (vendor.com/class)", k)
		}
		out.kinds[k] = true
	}
	for _, c := range a.Capabilities {
		if c == "all" {
			out.allCaps = true
			continue
		}
		if !contains(request.Capabilities, c) {
			return out, fmt.Errorf("allow.capabilities: unknown capability %q (known: all, %s)", c, strings.Join(request.Capabilities, ", "))
		}
		out.caps[c] = true
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"allow.profiles", a.Profiles}, {"allow.params", a.Params}} {
		for _, n := range l.list {
			if n != "*" {
				if err := checkToken(l.key, n); err != nil {
					return out, err
				}
			}
		}
	}
	out.profiles, out.params = a.Profiles, a.Params
	out.envRequests = a.EnvRequests != nil && *a.EnvRequests
	out.deviceParams = a.DeviceParams != nil && *a.DeviceParams
	for _, p := range a.PathPrefixes {
		clean := strings.ReplaceAll(p, "<uid>", "0")
		if !path.IsAbs(clean) || strings.ContainsAny(p, "\x00\n*?[") || path.Clean(clean) != strings.TrimSuffix(clean, "/") && clean != "/" {
			return out, fmt.Errorf("allow.path-prefixes: %q is not a clean absolute path (<uid> may stand for the uid)", p)
		}
	}
	out.pathPrefixes = a.PathPrefixes
	if a.MaxGPUs != nil {
		if *a.MaxGPUs < 0 || *a.MaxGPUs > 4096 {
			return out, fmt.Errorf("allow.max-gpus %d is not between 0 (no quota) and 4096", *a.MaxGPUs)
		}
		out.maxGPUs = *a.MaxGPUs
	}
	if len(a.Exclusive) > maxList {
		return out, fmt.Errorf("allow.exclusive: more than %d entries", maxList)
	}
	out.exclusive = map[string]bool{}
	for _, d := range a.Exclusive {
		switch {
		case d == "all":
			out.exclusiveAll = true
		case d == "shared":
			// The default, allowed for clarity.
		default:
			r, err := request.Parse([]string{request.EnvVisibleDevices + "=" + d}, nil, "x.com/y")
			if err != nil || r == nil || strings.Contains(d, ",") || d == "none" || d == "void" {
				return out, fmt.Errorf("allow.exclusive: %q is not all, shared, an index, a GPU-/MIG- UUID or a gpu:mig pair", d)
			}
			out.exclusive[d] = true
		}
	}
	return out, nil
}

// checkToken accepts a short name: letters, digits, '-', '_', '.', ':'.
func checkToken(key, v string) error {
	if v == "" || len(v) > 128 {
		return fmt.Errorf("%s: %q is not a name", key, v)
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return fmt.Errorf("%s: %q is not a name (letters, digits, - _ . : only)", key, v)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// listAllows reports whether a "*"-or-names list allows name.
func listAllows(list []string, name string) bool {
	return contains(list, "*") || contains(list, name)
}

// matches reports whether the rule is for id.
func (m *matcher) matches(id *Identity) bool {
	if len(m.namespaces) > 0 && (id.Namespace == "" || !anyGlob(m.namespaces, id.Namespace)) {
		return false
	}
	if len(m.pods) > 0 && (id.Pod == "" || !anyGlob(m.pods, id.Pod)) {
		return false
	}
	if len(m.callerUIDs) > 0 && !inRanges(m.callerUIDs, id.CallerUID) {
		return false
	}
	if len(m.callerGroups) > 0 {
		ok := inRanges(m.callerGroups, id.CallerGID)
		for _, g := range id.CallerGroups {
			ok = ok || inRanges(m.callerGroups, g)
		}
		if !ok {
			return false
		}
	}
	if len(m.processUIDs) > 0 && !inRanges(m.processUIDs, id.ProcessUID) {
		return false
	}
	if len(m.processGIDs) > 0 && !inRanges(m.processGIDs, id.ProcessGID) {
		return false
	}
	if m.privileged != nil && *m.privileged != id.Privileged {
		return false
	}
	if len(m.engines) > 0 && !contains(m.engines, id.Engine) {
		return false
	}
	for k, want := range m.annotations {
		got, ok := id.Annotations[k]
		if !ok || (want != "*" && got != want) {
			return false
		}
	}
	return true
}

func anyGlob(globs []string, s string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

func inRanges(rs []idRange, id uint32) bool {
	for _, r := range rs {
		if id >= r.lo && id <= r.hi {
			return true
		}
	}
	return false
}

var errNoRule = errors.New("no policy rule matches")
