// Package policy decides who may ask for which GPU, profile and host path.
// A policy is a preset (presets/*.toml, embedded) with the rules of
// config.toml's [policy] table tried before the preset's own; the first
// rule whose match holds for the requester (Identity) decides, and what it
// allows is checked against the request: a request is allowed, narrowed
// (capabilities dropped, a lower-ranked source ignored) or refused. The
// Decision carries the tenant, the rule and the request as asked and as
// granted, for the audit log and for later checks (quotas) that may still
// refuse it.
package policy

import (
	"bytes"
	"embed"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/docker/go-units"
	"github.com/pelletier/go-toml/v2"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/request"
)

//go:embed presets/*.toml
var presetFS embed.FS

// Preset names.
const (
	PresetWorkstation = "workstation"
	PresetServer      = "server"
)

// Defaults of the [policy] keys a table leaves out.
const (
	DefaultAuditLog     = "/var/log/nvbind/audit.log"
	DefaultAuditMaxSize = 16 << 20
	DefaultAuditKeep    = 5
)

// Policy is a compiled policy.
type Policy struct {
	// Off: config.toml has no [policy] table. No rules, no audit, no
	// per-tenant caches; the always-on rules still hold.
	Off                bool
	Preset             string
	AuditLog           string
	AuditMaxSize       int64
	AuditKeep          int
	AuditRequired      bool
	AnnotationPrefixes []string
	DefaultKind        string
	rules              []*rule
}

// presetFile is a presets/*.toml file.
type presetFile struct {
	Description   string              `toml:"description"`
	AuditRequired bool                `toml:"audit-required"`
	Defaults      config.PolicyAllow  `toml:"defaults"`
	Rules         []config.PolicyRule `toml:"rules"`
}

// Presets lists the embedded presets, sorted.
func Presets() []string {
	entries, _ := presetFS.ReadDir("presets")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".toml"))
	}
	sort.Strings(out)
	return out
}

// PresetDescription is a preset's one-line description.
func PresetDescription(name string) string {
	p, err := loadPreset(name)
	if err != nil {
		return ""
	}
	return p.Description
}

func loadPreset(name string) (*presetFile, error) {
	data, err := presetFS.ReadFile("presets/" + name + ".toml")
	if err != nil {
		return nil, fmt.Errorf("policy.preset %q is not one of %s", name, strings.Join(Presets(), ", "))
	}
	var p presetFile
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("preset %s: %w", name, err)
	}
	if len(p.Rules) == 0 || !emptyMatch(p.Rules[len(p.Rules)-1].Match) {
		return nil, fmt.Errorf("preset %s: the last rule must match every request", name)
	}
	return &p, nil
}

// Load compiles cfg's policy. A malformed policy is an error naming the
// rule and key; callers fail closed on it.
func Load(cfg *config.Config) (*Policy, error) {
	p := &Policy{DefaultKind: cfg.CDI.DefaultKind}
	pc := cfg.Policy
	if pc == nil {
		p.Off = true
		p.rules = []*rule{offRule()}
		return p, nil
	}
	p.Preset = pc.Preset
	if p.Preset == "" {
		p.Preset = PresetWorkstation
	}
	preset, err := loadPreset(p.Preset)
	if err != nil {
		return nil, err
	}
	p.AuditRequired = preset.AuditRequired
	p.AuditLog = pc.AuditLog
	if p.AuditLog == "" {
		p.AuditLog = DefaultAuditLog
	}
	if !path.IsAbs(p.AuditLog) || path.Clean(p.AuditLog) != p.AuditLog {
		return nil, fmt.Errorf("policy.audit-log %q is not a clean absolute path", p.AuditLog)
	}
	p.AuditMaxSize = DefaultAuditMaxSize
	if pc.AuditMaxSize != "" {
		n, err := units.RAMInBytes(pc.AuditMaxSize)
		if err != nil || n < 4096 {
			return nil, fmt.Errorf("policy.audit-max-size %q is not a size of at least 4KiB (like 16MiB)", pc.AuditMaxSize)
		}
		p.AuditMaxSize = n
	}
	p.AuditKeep = DefaultAuditKeep
	if pc.AuditKeep != 0 {
		if pc.AuditKeep < 1 || pc.AuditKeep > 1000 {
			return nil, fmt.Errorf("policy.audit-keep %d is not between 1 and 1000", pc.AuditKeep)
		}
		p.AuditKeep = pc.AuditKeep
	}
	for _, pre := range pc.AnnotationPrefixes {
		if !validPrefix(pre) {
			return nil, fmt.Errorf("policy.annotation-prefixes: %q is not an annotation prefix ending in \"/\" (like nvidia.cdi.k8s.io/)", pre)
		}
	}
	p.AnnotationPrefixes = pc.AnnotationPrefixes
	if len(pc.Rules) > maxRules {
		return nil, fmt.Errorf("policy.rules: %d rules, more than %d", len(pc.Rules), maxRules)
	}
	seen := map[string]bool{}
	for i, rc := range pc.Rules {
		where := fmt.Sprintf("policy.rules[%d]", i)
		if rc.Name != "" {
			where += fmt.Sprintf(" (%s)", rc.Name)
		}
		r, err := compileRule(rc, preset.Defaults, fmt.Sprintf("rule-%d", i+1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if seen[r.name] {
			return nil, fmt.Errorf("%s: name %q used twice", where, r.name)
		}
		seen[r.name] = true
		p.rules = append(p.rules, r)
	}
	for i, rc := range preset.Rules {
		r, err := compileRule(rc, preset.Defaults, fmt.Sprintf("%s-%d", p.Preset, i+1))
		if err != nil {
			return nil, fmt.Errorf("preset %s: rules[%d]: %w", p.Preset, i, err)
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// Rules names the rules in the order they are tried.
func (p *Policy) Rules() []string {
	out := make([]string, len(p.rules))
	for i, r := range p.rules {
		out[i] = r.name
	}
	return out
}

// RequestOptions are the request parsing options this policy implies.
func (p *Policy) RequestOptions() request.Options {
	return request.Options{DefaultKind: p.DefaultKind, AnnotationPrefixes: p.AnnotationPrefixes}
}

const maxRules = 1000

func validPrefix(p string) bool {
	if len(p) < 2 || len(p) > 128 || !strings.HasSuffix(p, "/") || strings.Count(p, "/") != 1 {
		return false
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '/') {
			return false
		}
	}
	return true
}

func emptyMatch(m config.PolicyMatch) bool {
	return len(m.Namespaces) == 0 && len(m.Pods) == 0 && len(m.CallerUIDs) == 0 && len(m.CallerGroups) == 0 &&
		len(m.ProcessUIDs) == 0 && len(m.ProcessGIDs) == 0 && m.Privileged == nil && len(m.Engines) == 0 &&
		len(m.Annotations) == 0
}

// Parse compiles a config.toml's text (its [policy] table): what `nvbind
// policy lint` and the fuzz tests run.
func Parse(data []byte) (*Policy, error) {
	cfg := config.Default()
	if err := config.Parse(data, cfg); err != nil {
		return nil, fmt.Errorf("config%w", err)
	}
	return Load(cfg)
}

// AnnotationPrefixes returns cfg's extra CDI annotation prefixes without
// compiling the policy (the runtime's cheap "may this ask for a GPU" test).
func AnnotationPrefixes(cfg *config.Config) []string { return cfg.AnnotationPrefixes() }
