package profiles

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	cdispec "tags.cncf.io/container-device-interface/specs-go"

	"github.com/nvbind/nvbind/internal/gpu"
)

// ParamAnnotationPrefix starts a parameter annotation:
// nvbind.io/profile.<name>=<value>.
const ParamAnnotationPrefix = "nvbind.io/profile."

// Capabilities a profile may ask for (NVIDIA_DRIVER_CAPABILITIES names).
var validCapabilities = []string{"compat32", "compute", "display", "graphics", "ngx", "utility", "video"}

// gpuMemory returns the framebuffer bytes of each GPU among devices
// (qualified CDI names) without NVML: it runs on the runtime's hot path and
// reads the inventory `nvbind cdi generate` saved. A variable so tests can
// stand in for it.
var gpuMemory = gpu.DeviceMemoryFor

// Target is what the container gets besides the profile.
type Target struct {
	// Devices are the qualified CDI device names injected.
	Devices []string
	// GPUs is how many GPUs (or MIG devices) the container gets.
	GPUs int
}

// ParamValue is a parameter's value and where it came from.
type ParamValue struct {
	Name        string `json:"name"`
	Value       string `json:"value"`
	Source      string `json:"source"`
	Description string `json:"description"`
}

// Setting is one thing a profile applies, for `nvbind profile show`.
type Setting struct {
	Kind     string `json:"kind"` // capability, env, mount, device, shm-size, rlimit
	Name     string `json:"name"`
	Value    string `json:"value,omitempty"`
	Source   string `json:"source"`
	Consumer string `json:"consumer,omitempty"`
	// Skipped says why a setting is not applied ("" when it is).
	Skipped string `json:"skipped,omitempty"`
}

// Resolved is a profile with its parameters applied and checked against
// the host.
type Resolved struct {
	Name         string              `json:"name"`
	Description  string              `json:"description"`
	Chain        []string            `json:"chain"`
	Params       []ParamValue        `json:"params"`
	Capabilities []string            `json:"capabilities"`
	Settings     []Setting           `json:"settings"`
	Warnings     []string            `json:"warnings,omitempty"`
	Fit          *Fit                `json:"ollamaFit,omitempty"`
	ShmSize      int64               `json:"shmSizeBytes,omitempty"`
	Rlimits      []rspec.POSIXRlimit `json:"rlimits,omitempty"`
	// Edits are the CDI container edits: env, mounts, device nodes.
	Edits cdispec.ContainerEdits `json:"containerEdits"`
}

// source is a label for settings coming from d, optionally under a
// parameter condition.
func source(d *definition, cond string) string {
	s := "profile " + d.name + " (" + originOf(d) + ")"
	if cond != "" {
		s += " when " + cond
	}
	return s
}

type envEntry struct {
	value, source string
}

type mountEntry struct {
	m      cdispec.Mount
	env    map[string]envEntry
	opt    bool
	source string
}

type deviceEntry struct {
	pattern, source string
}

// state accumulates a chain's settings, later definitions overriding.
type state struct {
	caps     map[string]string
	env      map[string]envEntry
	mounts   map[string]*mountEntry
	devices  map[string]deviceEntry
	shm      string
	shmSrc   string
	rlimits  map[string]envEntry
	tuner    string
	tunerSrc string
}

// declaredParams are the parameters a profile chain declares, a later
// profile's declaration replacing an earlier one's; each is checked.
func declaredParams(chain []*definition) (map[string]paramDef, error) {
	decl := map[string]paramDef{}
	for _, d := range chain {
		for n, p := range d.Params {
			if err := checkParamDef(n, p); err != nil {
				return nil, fmt.Errorf("profile %s (%s): %w", d.name, originOf(d), err)
			}
			decl[n] = p
		}
	}
	return decl, nil
}

// Resolve applies params to the profile name for a container getting t.
// Unknown profiles and parameters and bad values are errors that list what
// is valid.
func (c *Catalog) Resolve(name string, params map[string]string, t Target) (*Resolved, error) {
	chain, err := c.chain(name)
	if err != nil {
		return nil, err
	}
	decl, err := declaredParams(chain)
	if err != nil {
		return nil, err
	}
	vals, plist, err := resolveParams(name, decl, params)
	if err != nil {
		return nil, err
	}
	r := &Resolved{Name: name, Params: plist}
	st := &state{caps: map[string]string{}, env: map[string]envEntry{}, mounts: map[string]*mountEntry{},
		devices: map[string]deviceEntry{}, rlimits: map[string]envEntry{}}
	for _, d := range chain {
		r.Chain = append(r.Chain, d.name+" ("+originOf(d)+")")
		if d.Description != "" {
			r.Description = d.Description
		}
		if err := st.add(d, vals); err != nil {
			return nil, fmt.Errorf("profile %s (%s): %w", d.name, originOf(d), err)
		}
	}
	if err := st.finish(r); err != nil {
		return nil, fmt.Errorf("profile %s: %w", name, err)
	}
	switch st.tuner {
	case "":
	case "ollama":
		if err := c.applyOllama(r, vals, t, st.tunerSrc); err != nil {
			return nil, fmt.Errorf("profile %s: %w", name, err)
		}
	default:
		return nil, fmt.Errorf("profile %s: unknown tuner %q (valid: ollama)", name, st.tuner)
	}
	r.Edits.Env = envList(r.Settings)
	return r, nil
}

// add merges one definition (and its active `when` blocks) into st.
func (st *state) add(d *definition, vals map[string]string) error {
	src := source(d, "")
	for _, cap := range d.Capabilities {
		if !contains(validCapabilities, cap) {
			return fmt.Errorf("unknown capability %q (valid: %s)", cap, strings.Join(validCapabilities, ", "))
		}
		if _, ok := st.caps[cap]; !ok {
			st.caps[cap] = src
		}
	}
	if err := st.addEnv(d.Env, vals, src); err != nil {
		return err
	}
	if err := st.addMounts(d.Mounts, vals, src); err != nil {
		return err
	}
	if err := st.addDevices(d.Devices, vals, src); err != nil {
		return err
	}
	if d.ShmSize != "" {
		v, err := expand(d.ShmSize, vals)
		if err != nil {
			return fmt.Errorf("shm-size: %w", err)
		}
		if _, err := parseSize(v); err != nil {
			return fmt.Errorf("shm-size: %w", err)
		}
		st.shm, st.shmSrc = v, src
	}
	for name, v := range d.Rlimits {
		v, err := expand(v, vals)
		if err != nil {
			return fmt.Errorf("rlimits.%s: %w", name, err)
		}
		if _, err := parseRlimit(name, v); err != nil {
			return err
		}
		st.rlimits[name] = envEntry{v, src}
	}
	if d.Tuner != "" {
		st.tuner, st.tunerSrc = d.Tuner, src
	}
	for i, w := range d.When {
		p, ok := d.Params[w.Param]
		if !ok {
			return fmt.Errorf("when[%d]: unknown parameter %q", i, w.Param)
		}
		for _, v := range w.Values {
			if _, err := normalizeParam(p, v); err != nil {
				return fmt.Errorf("when[%d]: %s: %w", i, w.Param, err)
			}
		}
		if !contains(w.Values, vals[w.Param]) {
			continue
		}
		wsrc := source(d, w.Param+"="+vals[w.Param])
		if err := st.addEnv(w.Env, vals, wsrc); err != nil {
			return err
		}
		if err := st.addMounts(w.Mounts, vals, wsrc); err != nil {
			return err
		}
		if err := st.addDevices(w.Devices, vals, wsrc); err != nil {
			return err
		}
	}
	return nil
}

func (st *state) addEnv(env map[string]string, vals map[string]string, src string) error {
	return addEnvTo(st.env, env, vals, src)
}

func addEnvTo(dst map[string]envEntry, env map[string]string, vals map[string]string, src string) error {
	for name, v := range env {
		if err := checkEnvName(name); err != nil {
			return err
		}
		v, err := expand(v, vals)
		if err != nil {
			return fmt.Errorf("env %s: %w", name, err)
		}
		if err := CheckEnv(name, v); err != nil {
			return err
		}
		dst[name] = envEntry{v, src}
	}
	return nil
}

// mountOptions a profile may use; anything else (e.g. an idmap or a
// propagation trick) is refused.
var mountOptions = []string{"bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "rprivate", "private", "rslave", "slave"}

func (st *state) addMounts(mounts []mountDef, vals map[string]string, src string) error {
	for _, m := range mounts {
		s, err := expand(m.Source, vals)
		if err != nil {
			return fmt.Errorf("mount source: %w", err)
		}
		t, err := expand(m.Target, vals)
		if err != nil {
			return fmt.Errorf("mount target: %w", err)
		}
		for _, p := range []string{s, t} {
			if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsAny(p, "\x00\n") {
				return fmt.Errorf("mount %q -> %q: paths must be clean and absolute", s, t)
			}
		}
		if t == "/" || t == "/proc" || strings.HasPrefix(t, "/proc/") || t == "/sys" || strings.HasPrefix(t, "/sys/") {
			return fmt.Errorf("mount target %q is not allowed", t)
		}
		opts := m.Options
		if len(opts) == 0 {
			opts = []string{"rbind", "nosuid", "nodev"}
		}
		hasBind := false
		for _, o := range opts {
			if !contains(mountOptions, o) {
				return fmt.Errorf("mount %s: option %q not allowed (valid: %s)", t, o, strings.Join(mountOptions, ", "))
			}
			hasBind = hasBind || o == "bind" || o == "rbind"
		}
		if !hasBind {
			opts = append([]string{"rbind"}, opts...)
		}
		e := &mountEntry{
			m:      cdispec.Mount{HostPath: s, ContainerPath: t, Type: "bind", Options: append([]string(nil), opts...)},
			env:    map[string]envEntry{},
			opt:    m.Optional,
			source: src,
		}
		if err := addEnvTo(e.env, m.Env, vals, src+" with mount "+t); err != nil {
			return err
		}
		st.mounts[t] = e
	}
	return nil
}

func (st *state) addDevices(devs []string, vals map[string]string, src string) error {
	for _, d := range devs {
		p, err := expand(d, vals)
		if err != nil {
			return fmt.Errorf("device: %w", err)
		}
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return fmt.Errorf("device %q: want a clean absolute path or glob", p)
		}
		if _, err := filepath.Match(p, p); err != nil {
			return fmt.Errorf("device %q: %w", p, err)
		}
		st.devices[p] = deviceEntry{p, src}
	}
	return nil
}

// finish checks the merged settings against the host and fills r.
func (st *state) finish(r *Resolved) error {
	for _, cap := range validCapabilities {
		if src, ok := st.caps[cap]; ok {
			r.Capabilities = append(r.Capabilities, cap)
			r.Settings = append(r.Settings, Setting{Kind: "capability", Name: cap, Source: src})
		}
	}
	env := st.env
	targets := sortedKeys(st.mounts)
	for _, t := range targets {
		e := st.mounts[t]
		set := Setting{Kind: "mount", Name: t, Value: e.m.HostPath + " (" + strings.Join(e.m.Options, ",") + ")", Source: e.source}
		if _, err := os.Stat(e.m.HostPath); err != nil {
			if !e.opt {
				return fmt.Errorf("mount %s: host path %s: %w", t, e.m.HostPath, err)
			}
			set.Skipped = "host path " + e.m.HostPath + " missing"
			r.Settings = append(r.Settings, set)
			for _, name := range sortedKeys(e.env) {
				v := e.env[name]
				r.Settings = append(r.Settings, Setting{Kind: "env", Name: name, Value: v.value, Source: v.source,
					Consumer: KnownEnv[name].Consumer, Skipped: "mount " + t + " skipped"})
			}
			continue
		}
		r.Settings = append(r.Settings, set)
		r.Edits.Mounts = append(r.Edits.Mounts, &e.m)
		for _, name := range sortedKeys(e.env) {
			v := e.env[name]
			if old, ok := env[name]; ok && old.value != v.value {
				return fmt.Errorf("env %s: %q from %s conflicts with %q from %s", name, v.value, v.source, old.value, old.source)
			}
			env[name] = v
		}
	}
	for _, name := range sortedKeys(env) {
		v := env[name]
		r.Settings = append(r.Settings, Setting{Kind: "env", Name: name, Value: v.value, Source: v.source, Consumer: KnownEnv[name].Consumer})
	}
	for _, p := range sortedKeys(st.devices) {
		d := st.devices[p]
		nodes, err := hostDevices(p)
		if err != nil {
			return err
		}
		if len(nodes) == 0 {
			r.Settings = append(r.Settings, Setting{Kind: "device", Name: p, Source: d.source, Skipped: "no device node on the host"})
			continue
		}
		for _, n := range nodes {
			r.Settings = append(r.Settings, Setting{Kind: "device", Name: n, Source: d.source})
			r.Edits.DeviceNodes = append(r.Edits.DeviceNodes, &cdispec.DeviceNode{Path: n, HostPath: n, Permissions: "rwm"})
		}
	}
	if st.shm != "" {
		n, _ := parseSize(st.shm)
		r.ShmSize = n
		r.Settings = append(r.Settings, Setting{Kind: "shm-size", Name: "/dev/shm", Value: st.shm, Source: st.shmSrc})
	}
	for _, name := range sortedKeys(st.rlimits) {
		v := st.rlimits[name]
		rl, _ := parseRlimit(name, v.value)
		r.Rlimits = append(r.Rlimits, rl)
		r.Settings = append(r.Settings, Setting{Kind: "rlimit", Name: name, Value: v.value, Source: v.source})
	}
	return nil
}

// hostDevices expands a device glob to the character and block devices it
// names on the host; other files are ignored.
func hostDevices(pattern string) ([]string, error) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("device %q: %w", pattern, err)
	}
	var out []string
	for _, m := range matches {
		fi, err := os.Lstat(m)
		if err != nil {
			continue
		}
		if fi.Mode()&fs.ModeDevice != 0 {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out, nil
}

// parseRlimit reads "unlimited", "N" or "soft:hard" for an rlimit name.
func parseRlimit(name, v string) (rspec.POSIXRlimit, error) {
	vv := strings.ReplaceAll(v, "unlimited", "-1")
	u, err := units.ParseUlimit(name + "=" + vv)
	if err != nil {
		return rspec.POSIXRlimit{}, fmt.Errorf("rlimits.%s=%q: %v (names: core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack; values: N, soft:hard, unlimited)", name, v, err)
	}
	return rspec.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(name), Soft: uint64(u.Soft), Hard: uint64(u.Hard)}, nil
}

// applyOllama runs the ollama tuner and adds its environment.
func (c *Catalog) applyOllama(r *Resolved, vals map[string]string, t Target, src string) error {
	model, err := parseModel(vals["model"], vals["size"], vals["precision"])
	if err != nil {
		return err
	}
	in := ollamaInput{
		Model:          model,
		KVCache:        vals["kv-cache"],
		FlashAttention: vals["flash-attention"] == "true",
		KeepAlive:      vals["keep-alive"],
		AllowOver:      vals["allow-overcommit"] == "true",
	}
	if in.Context, err = strconv.Atoi(vals["context"]); err != nil {
		return fmt.Errorf("parameter context: %q is not a number", vals["context"])
	}
	if in.MaxLoaded, err = strconv.Atoi(vals["max-loaded-models"]); err != nil {
		return fmt.Errorf("parameter max-loaded-models: %q is not a number", vals["max-loaded-models"])
	}
	if p := vals["parallel"]; p != "auto" && p != "" {
		if in.Parallel, err = strconv.Atoi(p); err != nil {
			return fmt.Errorf("parameter parallel: %q is not a number", p)
		}
	}
	if s := vals["gpu-memory"]; s != "" {
		n, err := parseSize(s)
		if err != nil {
			return fmt.Errorf("parameter gpu-memory: %w", err)
		}
		in.GPUMemory = make([]uint64, t.GPUs)
		for i := range in.GPUMemory {
			in.GPUMemory[i] = uint64(n)
		}
		in.MemorySource = "parameter gpu-memory=" + s + " per GPU"
	} else if mem, err := gpuMemory(c.cfg, t.Devices); err == nil && len(mem) > 0 {
		in.GPUMemory = mem
		in.MemorySource = "GPU inventory"
	} else if err != nil {
		r.Warnings = append(r.Warnings, "GPU memory: "+err.Error())
	}
	choice, err := tuneOllama(in)
	if err != nil {
		return err
	}
	fit := choice.Fit
	r.Fit = &fit
	r.Warnings = append(r.Warnings, choice.Warnings...)
	why := fmt.Sprintf("ollama tuner of %s: %s class, %s, needs %s", src, fit.Class, fit.Precision, gibString(fit.NeedBytes))
	if fit.MemoryUnknown {
		why += ", GPU memory unknown"
	} else {
		why += " of " + gibString(sum(fit.GPUMemory))
	}
	for _, kv := range choice.Env {
		if !contains(ollamaEnvNames, kv[0]) {
			return fmt.Errorf("ollama tuner sets %s, which is not in its documented list", kv[0])
		}
		if err := CheckEnv(kv[0], kv[1]); err != nil {
			return err
		}
		// The tuner's values win over the data's: they follow from the fit.
		r.Settings = replaceEnv(r.Settings, Setting{Kind: "env", Name: kv[0], Value: kv[1], Source: why, Consumer: KnownEnv[kv[0]].Consumer})
	}
	return nil
}

func replaceEnv(s []Setting, e Setting) []Setting {
	for i := range s {
		if s[i].Kind == "env" && s[i].Name == e.Name && s[i].Skipped == "" {
			s[i] = e
			return s
		}
	}
	return append(s, e)
}

// envList returns the applied env settings as NAME=value, sorted.
func envList(s []Setting) []string {
	var out []string
	for _, e := range s {
		if e.Kind == "env" && e.Skipped == "" {
			out = append(out, e.Name+"="+e.Value)
		}
	}
	sort.Strings(out)
	return out
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
