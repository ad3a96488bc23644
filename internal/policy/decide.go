package policy

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/nvbind/nvbind/internal/audit"
	"github.com/nvbind/nvbind/internal/profiles"
	"github.com/nvbind/nvbind/internal/request"
)

// Outcome is what became of a request.
type Outcome string

const (
	Allowed  Outcome = "allowed"
	Narrowed Outcome = "narrowed"
	Refused  Outcome = "refused"
)

// Decision is a policy's answer to one request.
type Decision struct {
	Outcome Outcome
	// Rule names the rule that decided ("" when none matched).
	Rule string
	// Reason says why a request was refused.
	Reason string
	// Notes say what was narrowed.
	Notes    []string
	Identity *Identity
	Tenant   Tenant
	Asked    audit.Request
	Granted  audit.Request
	// MaxDevices is the matching rule's per-container device limit (0:
	// none), for checks that come later.
	MaxDevices int
	// MaxGPUs is the matching rule's per-tenant quota across live
	// containers (0: none), checked against the ledger.
	MaxGPUs int

	exclusiveAll bool
	exclusive    map[string]bool
	facts        *profiles.PolicyFacts
}

// Refuse turns d into a refusal by rule (a later check, such as a quota,
// may refuse what the rules allowed).
func (d *Decision) Refuse(rule, reason string) {
	d.Outcome, d.Rule, d.Reason = Refused, rule, reason
	d.Granted = audit.Request{}
}

// Exclusive reports whether the rule gives a device, known by any of
// names (index, UUID, gpu:mig pair), to one live container at a time.
func (d *Decision) Exclusive(names ...string) bool {
	if d.exclusiveAll {
		return true
	}
	for _, n := range names {
		if n != "" && d.exclusive[n] {
			return true
		}
	}
	return false
}

// NeedsLedger reports whether the decision has a quota or exclusive GPUs
// to check against the live grants.
func (d *Decision) NeedsLedger() bool {
	return d.MaxGPUs > 0 || d.exclusiveAll || len(d.exclusive) > 0
}

// Err is the one-line error a refusal fails create with (nil otherwise).
func (d *Decision) Err() error {
	if d.Outcome != Refused {
		return nil
	}
	return fmt.Errorf("policy rule %q refuses %s: %s", d.Rule, d.askedSummary(), d.Reason)
}

func (d *Decision) askedSummary() string {
	var parts []string
	if len(d.Asked.Devices) > 0 {
		parts = append(parts, "devices "+strings.Join(d.Asked.Devices, ",")+" (from "+d.Asked.Source+")")
	}
	if d.Asked.Profile != "" {
		s := "profile " + d.Asked.Profile
		keys := make([]string, 0, len(d.Asked.Params))
		for k := range d.Asked.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s += " " + k + "=" + d.Asked.Params[k]
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "the request"
	}
	return strings.Join(parts, " and ")
}

func snapshot(req *request.Request) audit.Request {
	r := audit.Request{Source: string(req.Source), Devices: append([]string(nil), req.Devices...),
		Ignored: append([]string(nil), req.Ignored...), Capabilities: append([]string(nil), req.Capabilities...),
		Profile: req.Profile}
	if len(req.ProfileParams) > 0 {
		r.Params = map[string]string{}
		for k, v := range req.ProfileParams {
			r.Params[k] = v
		}
	}
	return r
}

// ProfileFacts returns what Decide needs to know of req's profile; nil
// when it asks for none.
type ProfileFacts func(req *request.Request) (*profiles.PolicyFacts, error)

// CatalogFacts reads the profile facts from cat.
func CatalogFacts(cat func() (*profiles.Catalog, error)) ProfileFacts {
	return func(req *request.Request) (*profiles.PolicyFacts, error) {
		c, err := cat()
		if err != nil {
			return nil, err
		}
		return c.PolicyFacts(req.Profile, req.ProfileParams)
	}
}

// Decide finds the first rule for id and checks req against it,
// narrowing req in place (capabilities) when it allows less than asked.
// An error is a request that cannot be judged (an unknown profile or
// parameter), reported like a bad request.
func (p *Policy) Decide(id *Identity, req *request.Request, facts ProfileFacts) (*Decision, error) {
	d := &Decision{Identity: id, Tenant: id.Tenant(), Asked: snapshot(req)}
	var r *rule
	for _, c := range p.rules {
		if c.match.matches(id) {
			r = c
			break
		}
	}
	if r == nil {
		d.Refuse("", errNoRule.Error())
		return d, nil
	}
	d.Rule, d.MaxDevices = r.name, r.allow.maxDevices
	d.MaxGPUs, d.exclusiveAll, d.exclusive = r.allow.maxGPUs, r.allow.exclusiveAll, r.allow.exclusive
	a := &r.allow
	if len(req.Ignored) > 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("%s ignored: the %s request wins (%s)",
			request.EnvVisibleDevices, req.Source, strings.Join(req.Ignored, ",")))
	}
	if reason := p.checkDevices(id, req, a); reason != "" {
		d.Refuse(r.name, reason)
		return d, nil
	}
	if !a.allCaps {
		var kept, dropped []string
		for _, c := range req.Capabilities {
			if a.caps[c] {
				kept = append(kept, c)
			} else {
				dropped = append(dropped, c)
			}
		}
		if len(dropped) > 0 {
			req.Capabilities = kept
			d.Notes = append(d.Notes, "capabilities dropped: "+strings.Join(dropped, ","))
		}
	}
	if req.Profile != "" {
		reason, err := p.checkProfile(d, id, req, a, facts)
		if err != nil {
			return nil, err
		}
		if reason != "" {
			d.Refuse(r.name, reason)
			return d, nil
		}
	}
	d.Outcome = Allowed
	if len(d.Notes) > 0 {
		d.Outcome = Narrowed
	}
	d.Granted = snapshot(req)
	return d, nil
}

// checkDevices returns why req's devices are refused ("" when allowed).
func (p *Policy) checkDevices(id *Identity, req *request.Request, a *allow) string {
	if len(req.Devices) == 0 {
		return ""
	}
	if req.Source == request.SourceEnv {
		if !a.envRequests {
			who := "an unprivileged container"
			if id.Privileged {
				who = "this container"
			}
			return fmt.Sprintf("%s requests are not allowed for %s (ask through a CDI annotation or a device plugin)", request.EnvVisibleDevices, who)
		}
		for _, dev := range req.Devices {
			kind := request.KindOf(dev)
			if !request.IsDefaultKind(kind, p.DefaultKind) && !a.kinds[kind] {
				return fmt.Sprintf("%s may name only %s devices, not %s (use a CDI annotation)", request.EnvVisibleDevices, p.DefaultKind, dev)
			}
		}
	}
	count := 0
	for _, dev := range req.Devices {
		kind := request.KindOf(dev)
		if !request.IsDefaultKind(kind, p.DefaultKind) {
			continue
		}
		_, name, _ := strings.Cut(dev, "=")
		if name == request.DeviceDriver {
			continue
		}
		count++
		if name == request.DeviceAll {
			if !a.anyDevice {
				return "device all is not allowed"
			}
			if a.maxDevices > 0 {
				return fmt.Sprintf("device all is more than the %d device(s) allowed", a.maxDevices)
			}
			continue
		}
		mig := kind != p.DefaultKind || strings.HasPrefix(name, "MIG-") || strings.Contains(name, ":")
		if !a.anyDevice && !a.devices[name] && !(mig && a.anyMIG) {
			return fmt.Sprintf("device %s is not allowed", dev)
		}
	}
	if a.maxDevices > 0 && count > a.maxDevices {
		return fmt.Sprintf("%d devices are more than the %d allowed", count, a.maxDevices)
	}
	return ""
}

// checkProfile returns why req's profile is refused ("" when allowed).
func (p *Policy) checkProfile(d *Decision, id *Identity, req *request.Request, a *allow, facts ProfileFacts) (string, error) {
	if !listAllows(a.profiles, req.Profile) {
		return fmt.Sprintf("profile %s is not allowed (allowed: %s)", req.Profile, strings.Join(a.profiles, ", ")), nil
	}
	keys := make([]string, 0, len(req.ProfileParams))
	for k := range req.ProfileParams {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !listAllows(a.params, k) {
			return fmt.Sprintf("profile parameter %s is not allowed", k), nil
		}
	}
	if facts == nil {
		return "", nil
	}
	f, err := facts(req)
	if err != nil {
		return "", err
	}
	d.facts = f
	if !a.allCaps {
		for _, c := range f.Capabilities {
			if !a.caps[c] {
				return fmt.Sprintf("profile %s needs capability %s, which is not allowed", req.Profile, c), nil
			}
		}
	}
	for _, pf := range f.Params {
		if pf.GrantsDevices && !a.deviceParams {
			return fmt.Sprintf("profile parameter %s=%s hands over host devices, which is not allowed", pf.Name, pf.Value), nil
		}
		if pf.Type == profiles.TypePath && pf.Given && !p.pathAllowed(id, a, pf.Value) {
			return fmt.Sprintf("profile parameter %s=%s is outside the allowed host paths (%s)", pf.Name, pf.Value,
				strings.Join(expandPrefixes(a.pathPrefixes, id), ", ")), nil
		}
	}
	return "", nil
}

// expandPrefixes substitutes <uid> with the caller's and the container
// user's uid.
func expandPrefixes(prefixes []string, id *Identity) []string {
	var out []string
	for _, p := range prefixes {
		if !strings.Contains(p, "<uid>") {
			out = append(out, p)
			continue
		}
		for _, u := range []uint32{id.CallerUID, id.ProcessUID} {
			e := strings.ReplaceAll(p, "<uid>", strconv.FormatUint(uint64(u), 10))
			if !contains(out, e) {
				out = append(out, e)
			}
		}
	}
	return out
}

// pathAllowed reports whether host path v lies under an allowed prefix,
// as written and with symlinks resolved (a link under the cache dir must
// not lead to /).
func (p *Policy) pathAllowed(id *Identity, a *allow, v string) bool {
	prefixes := expandPrefixes(a.pathPrefixes, id)
	if !under(prefixes, v) {
		return false
	}
	real := resolveExisting(v)
	if under(prefixes, real) {
		return true
	}
	var realPrefixes []string
	for _, pre := range prefixes {
		realPrefixes = append(realPrefixes, resolveExisting(filepath.Clean(pre)))
	}
	return under(realPrefixes, real)
}

// resolveExisting resolves the symlinks of v's longest existing ancestor
// and appends the rest: where a mount of v would land.
func resolveExisting(v string) string {
	for dir := v; ; dir = filepath.Dir(dir) {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			rel, _ := filepath.Rel(dir, v)
			return filepath.Join(r, rel)
		}
		if dir == "/" || dir == "." {
			return v
		}
	}
}

func under(prefixes []string, v string) bool {
	for _, pre := range prefixes {
		base := strings.TrimSuffix(pre, "/")
		if base == "" || v == base || strings.HasPrefix(v, base+"/") {
			return true
		}
	}
	return false
}
