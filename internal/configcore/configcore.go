// Package configcore is config.toml's types, defaults and checks, and the
// parser-only reading of the usual file (ParseFast). It imports no strings,
// path/filepath or TOML decoder: nvbind-runtime reads its config during
// package init (cmd/nvbind-runtime/internal/passthrough), and a package
// that imports strings is initialised only after the heavy packages whose
// paths sort before it. internal/config adds the decoder, the error
// messages for what ParseFast leaves, and the settings listing.
package configcore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/nvbind/nvbind/internal/plainfile"
)

// DefaultPath is the system config file.
const DefaultPath = "/etc/nvbind/config.toml"

// EnvPath names an alternative config file.
const EnvPath = "NVBIND_CONFIG"

// Config is the whole config file.
type Config struct {
	Runtime  Runtime            `toml:"runtime"`
	CDI      CDI                `toml:"cdi"`
	Driver   Driver             `toml:"driver"`
	Hook     Hook               `toml:"hook"`
	Ledger   Ledger             `toml:"ledger"`
	Profiles map[string]Profile `toml:"profiles"`
	// Policy is nil when config.toml has no [policy] table: no rules, no
	// audit (see internal/policy).
	Policy *Policy `toml:"policy"`

	// Path is the file the config was read from ("" for built-in defaults).
	Path string `toml:"-"`
}

// Runtime configures the shim and the low-level runtime it hands off to.
type Runtime struct {
	// Runtimes are tried in order; names are looked up on PATH.
	Runtimes []string `toml:"runtimes"`
	LogFile  string   `toml:"log-file"`
	LogLevel string   `toml:"log-level"`
	// StateDir holds nvbind-runtime's small state files: the runtime each
	// container was created with (when the engine passes no --root) and a
	// just-in-time spec write that just failed.
	StateDir string `toml:"state-dir"`
}

// CDI configures where CDI specs are read and written.
type CDI struct {
	SpecDirs    []string `toml:"spec-dirs"`
	DefaultKind string   `toml:"default-kind"`
	// JITSpec is where a just-in-time spec is cached ("" turns JIT off).
	JITSpec string `toml:"jit-spec"`
}

// Driver locates the host's NVIDIA driver files.
type Driver struct {
	Root string `toml:"root"`
	// Inventory is where `nvbind cdi generate` saves what NVML found (GPU
	// memory), for the runtime, which never loads NVML.
	Inventory string `toml:"inventory"`
}

// Hook locates nvbind-hook, which generated CDI specs call by absolute path.
type Hook struct {
	// Path "" means the nvbind-hook installed beside the running binary
	// (see HookPath).
	Path string `toml:"path"`
	// InRuntime lets nvbind-runtime do the hook's work itself before runc
	// starts, where it can do it exactly (internal/hookfold); false leaves
	// it to the hook process.
	InRuntime bool `toml:"in-runtime"`
}

// Ledger configures the record of live GPU grants (internal/ledger).
type Ledger struct {
	// Dir holds one file per container with GPUs; "" turns the ledger
	// (and with it quotas, exclusive GPUs and nvbind ps) off.
	Dir string `toml:"dir"`
}

// fallbackHookPath is used when no nvbind-hook sits beside the binary.
const fallbackHookPath = "/usr/local/bin/nvbind-hook"

// HookPath is the nvbind-hook that generated specs call: hook.path when
// set, else the nvbind-hook beside this executable (nvbind and
// nvbind-runtime are installed together with it, wherever PREFIX put them),
// else /usr/local/bin/nvbind-hook.
func (c *Config) HookPath() string {
	if c.Hook.Path != "" {
		return c.Hook.Path
	}
	if exe, err := os.Executable(); err == nil {
		p := path.Join(path.Dir(exe), "nvbind-hook")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return fallbackHookPath
}

// Profile is a user-defined or overridden workload profile.
type Profile struct {
	Extends      string            `toml:"extends"`
	Description  string            `toml:"description"`
	Capabilities []string          `toml:"capabilities"`
	Env          map[string]string `toml:"env"`
	Mounts       []Mount           `toml:"mounts"`
	Devices      []string          `toml:"devices"`
	ShmSize      string            `toml:"shm-size"`
	Rlimits      map[string]string `toml:"rlimits"`
}

// Mount is a bind mount a profile adds.
type Mount struct {
	Source   string   `toml:"source"`
	Target   string   `toml:"target"`
	Options  []string `toml:"options"`
	Optional bool     `toml:"optional"`
}

// Default returns the built-in configuration.
func Default() *Config {
	return &Config{
		Runtime: Runtime{
			Runtimes: []string{"runc", "crun"},
			LogLevel: "info",
			StateDir: "/run/nvbind",
		},
		CDI: CDI{
			SpecDirs:    []string{"/etc/cdi", "/var/run/cdi"},
			DefaultKind: "nvidia.com/gpu",
			JITSpec:     "/var/run/cdi/nvidia.yaml",
		},
		Driver: Driver{Root: "/", Inventory: "/var/run/nvbind/inventory.json"},
		Hook:   Hook{InRuntime: true},
		Ledger: Ledger{Dir: "/run/nvbind/ledger"},
	}
}

// Path returns the config file to read: $NVBIND_CONFIG, else DefaultPath.
func Path() string {
	if p := os.Getenv(EnvPath); p != "" {
		return p
	}
	return DefaultPath
}

// ErrNeedsDecoder: ParseFastOnly cannot read the file (see ParseFast).
var ErrNeedsDecoder = errors.New(": needs the full TOML decoder")

// Load reads path over the defaults with parse (config.Parse, or
// ParseFastOnly). A missing file gives defaults.
func Load(path string, parse func([]byte, *Config) error) (*Config, error) {
	cfg := Default()
	data, err := plainfile.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := parse(data, cfg); err != nil {
		return nil, fmt.Errorf("config %s%w", path, err)
	}
	cfg.Path = path
	return cfg, nil
}

// ParseFastOnly is config.Parse for the files ParseFast reads, and
// ErrNeedsDecoder for the others.
func ParseFastOnly(data []byte, cfg *Config) error {
	if !ParseFast(data, cfg) {
		return ErrNeedsDecoder
	}
	return cfg.Validate()
}

// Validate checks values that TOML types cannot.
func (c *Config) Validate() error {
	if len(c.Runtime.Runtimes) == 0 {
		return errors.New(": runtime.runtimes must name at least one runtime")
	}
	switch string(bytes.ToLower([]byte(c.Runtime.LogLevel))) {
	case "panic", "fatal", "error", "warn", "warning", "info", "debug", "trace":
	default:
		return fmt.Errorf(": runtime.log-level %q is not one of error, warn, info, debug", c.Runtime.LogLevel)
	}
	if len(c.CDI.SpecDirs) == 0 {
		return errors.New(": cdi.spec-dirs must name at least one directory")
	}
	if c.Ledger.Dir != "" && !path.IsAbs(c.Ledger.Dir) {
		return fmt.Errorf(": ledger.dir %q is not an absolute path", c.Ledger.Dir)
	}
	if bytes.IndexByte([]byte(c.CDI.DefaultKind), '/') < 0 {
		return fmt.Errorf(": cdi.default-kind %q is not of the form vendor.com/class", c.CDI.DefaultKind)
	}
	return nil
}

// Policy is the [policy] table: who may ask for which GPU, profile and
// host path. Its values are checked by internal/policy, which also fills
// in the defaults of a table that leaves keys out.
type Policy struct {
	// Preset is "workstation" (default) or "server".
	Preset string `toml:"preset"`
	// AnnotationPrefixes are CDI annotation prefixes read besides
	// cdi.k8s.io/.
	AnnotationPrefixes []string `toml:"annotation-prefixes"`
	// AuditLog is the hash-chained JSON-lines audit log.
	AuditLog string `toml:"audit-log"`
	// AuditMaxSize rotates the log when it grows past this size.
	AuditMaxSize string `toml:"audit-max-size"`
	// AuditKeep is how many rotated files are kept.
	AuditKeep int `toml:"audit-keep"`
	// Rules are tried in order before the preset's; the first that
	// matches decides.
	Rules []PolicyRule `toml:"rules"`
}

// PolicyRule is one [[policy.rules]] entry.
type PolicyRule struct {
	Name  string      `toml:"name"`
	Match PolicyMatch `toml:"match"`
	Allow PolicyAllow `toml:"allow"`
}

// PolicyMatch says which requests a rule is for; every key given must
// match (a list matches when one of its entries does).
type PolicyMatch struct {
	Namespaces   []string          `toml:"namespaces"`
	Pods         []string          `toml:"pods"`
	CallerUIDs   []string          `toml:"caller-uids"`
	CallerGroups []string          `toml:"caller-groups"`
	ProcessUIDs  []string          `toml:"process-uids"`
	ProcessGIDs  []string          `toml:"process-gids"`
	Privileged   *bool             `toml:"privileged"`
	Engines      []string          `toml:"engines"`
	Annotations  map[string]string `toml:"annotations"`
}

// PolicyAllow is what a matching request may have; a key left out takes
// the preset's default.
type PolicyAllow struct {
	Devices      []string `toml:"devices"`
	MaxDevices   *int     `toml:"max-devices"`
	Kinds        []string `toml:"kinds"`
	Capabilities []string `toml:"capabilities"`
	Profiles     []string `toml:"profiles"`
	Params       []string `toml:"params"`
	EnvRequests  *bool    `toml:"env-requests"`
	PathPrefixes []string `toml:"path-prefixes"`
	DeviceParams *bool    `toml:"device-params"`
	// MaxGPUs is the tenant's quota across its live containers (0: none).
	MaxGPUs *int `toml:"max-gpus"`
	// Exclusive lists the devices (or "all") a live container holds alone.
	Exclusive []string `toml:"exclusive"`
}

// AnnotationPrefixes are the CDI annotation prefixes [policy] adds to
// cdi.k8s.io/ (none without a [policy] table).
func (c *Config) AnnotationPrefixes() []string {
	if c.Policy == nil {
		return nil
	}
	return c.Policy.AnnotationPrefixes
}

// ParseFast reads the usual config.toml, the [runtime], [cdi], [driver],
// [hook] and [ledger] tables with their string, bool and string-list keys, with go-toml's
// parser alone. Its decoder's reflection was most of what loading the
// config cost nvbind-runtime on every call. Anything else (profiles,
// policy, a dotted or unknown key, another value type, a key or table
// given twice, a syntax error) is left to the decoder, so every error
// message and every other file decodes exactly as before.

// fastStrings, fastBools and fastLists are the keys parseFast takes, by table.key.
var (
	fastStrings = map[string]func(*Config) *string{
		"runtime.log-file":  func(c *Config) *string { return &c.Runtime.LogFile },
		"runtime.log-level": func(c *Config) *string { return &c.Runtime.LogLevel },
		"runtime.state-dir": func(c *Config) *string { return &c.Runtime.StateDir },
		"cdi.default-kind":  func(c *Config) *string { return &c.CDI.DefaultKind },
		"cdi.jit-spec":      func(c *Config) *string { return &c.CDI.JITSpec },
		"driver.root":       func(c *Config) *string { return &c.Driver.Root },
		"driver.inventory":  func(c *Config) *string { return &c.Driver.Inventory },
		"hook.path":         func(c *Config) *string { return &c.Hook.Path },
		"ledger.dir":        func(c *Config) *string { return &c.Ledger.Dir },
	}
	fastBools = map[string]func(*Config) *bool{
		"hook.in-runtime": func(c *Config) *bool { return &c.Hook.InRuntime },
	}
	fastLists = map[string]func(*Config) *[]string{
		"runtime.runtimes": func(c *Config) *[]string { return &c.Runtime.Runtimes },
		"cdi.spec-dirs":    func(c *Config) *[]string { return &c.CDI.SpecDirs },
	}
)

// ParseFast decodes data over cfg and reports true, or leaves cfg as it
// was and reports false when the decoder must read data.
func ParseFast(data []byte, cfg *Config) bool {
	out := *cfg
	var p unstable.Parser
	p.Reset(data)
	table := ""
	seen := map[string]bool{}
	for p.NextExpression() {
		e := p.Expression()
		key, ok := simpleKey(e)
		if !ok {
			return false
		}
		switch e.Kind {
		case unstable.Table:
			switch key {
			case "runtime", "cdi", "driver", "hook", "ledger":
			default:
				return false
			}
			if seen["["+key] {
				return false
			}
			seen["["+key] = true
			table = key
		case unstable.KeyValue:
			full := table + "." + key
			if table == "" || seen[full] {
				return false
			}
			seen[full] = true
			v := e.Value()
			if field := fastStrings[full]; field != nil && v.Kind == unstable.String {
				*field(&out) = string(v.Data)
			} else if field := fastBools[full]; field != nil && v.Kind == unstable.Bool {
				*field(&out) = string(v.Data) == "true"
			} else if field := fastLists[full]; field != nil && v.Kind == unstable.Array {
				list := []string{}
				for it := v.Children(); it.Next(); {
					n := it.Node()
					if n.Kind != unstable.String {
						return false
					}
					list = append(list, string(n.Data))
				}
				*field(&out) = list
			} else {
				return false
			}
		default:
			return false
		}
	}
	if p.Error() != nil {
		return false
	}
	*cfg = out
	return true
}

// simpleKey is the one-part key of a table header or key/value.
func simpleKey(e *unstable.Node) (string, bool) {
	if e.Kind != unstable.Table && e.Kind != unstable.KeyValue {
		return "", false
	}
	it := e.Key()
	if !it.Next() {
		return "", false
	}
	key := string(it.Node().Data)
	if it.Next() {
		return "", false
	}
	return key, true
}
