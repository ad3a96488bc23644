// Package config loads nvbind's config.toml: built-in defaults, overridden by
// the file named in NVBIND_CONFIG or /etc/nvbind/config.toml. A missing file
// means defaults; a malformed file or an unknown key is an error that names
// the file and the line.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
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
		p := filepath.Join(filepath.Dir(exe), "nvbind-hook")
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

// Load reads the config file from Path(); a missing file gives defaults.
func Load() (*Config, error) {
	return LoadFile(Path())
}

// LoadFile reads path over the defaults. A missing file gives defaults.
func LoadFile(path string) (*Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := Parse(data, cfg); err != nil {
		return nil, fmt.Errorf("config %s%w", path, err)
	}
	cfg.Path = path
	return cfg, nil
}

// Parse decodes TOML data over cfg, strictly. Errors start with ":<line>: "
// (or ": " where no line is known) so callers can prefix the file name.
func Parse(data []byte, cfg *Config) error {
	if parseFast(data, cfg) {
		return cfg.Validate()
	}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) && len(strict.Errors) > 0 {
			e := strict.Errors[0]
			row, _ := e.Position()
			return fmt.Errorf(":%d: unknown key %q", row, strings.Join(e.Key(), "."))
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			if key := strings.Join(de.Key(), "."); key != "" {
				return fmt.Errorf(":%d: %s: %s", row, key, typeMessage(de.Error()))
			}
			return fmt.Errorf(":%d: %s", row, de.Error())
		}
		return fmt.Errorf(": %w", err)
	}
	return cfg.Validate()
}

// typeMessage rewords go-toml's type errors, which name Go struct fields,
// in terms of the file: "cannot decode TOML string into struct field
// config.Runtime.Runtimes of type []string" becomes "a string is not a
// valid value here (want []string)".
func typeMessage(msg string) string {
	var got, want string
	if i := strings.Index(msg, "cannot decode TOML "); i >= 0 {
		rest := msg[i+len("cannot decode TOML "):]
		got, _, _ = strings.Cut(rest, " ")
		if j := strings.LastIndex(rest, " of type "); j >= 0 {
			want = rest[j+len(" of type "):]
		}
	}
	if got == "" || want == "" {
		return msg
	}
	return fmt.Sprintf("a %s is not a valid value here (want %s)", got, want)
}

// Validate checks values that TOML types cannot.
func (c *Config) Validate() error {
	if len(c.Runtime.Runtimes) == 0 {
		return errors.New(": runtime.runtimes must name at least one runtime")
	}
	switch strings.ToLower(c.Runtime.LogLevel) {
	case "panic", "fatal", "error", "warn", "warning", "info", "debug", "trace":
	default:
		return fmt.Errorf(": runtime.log-level %q is not one of error, warn, info, debug", c.Runtime.LogLevel)
	}
	if len(c.CDI.SpecDirs) == 0 {
		return errors.New(": cdi.spec-dirs must name at least one directory")
	}
	if c.Ledger.Dir != "" && !filepath.IsAbs(c.Ledger.Dir) {
		return fmt.Errorf(": ledger.dir %q is not an absolute path", c.Ledger.Dir)
	}
	if !strings.Contains(c.CDI.DefaultKind, "/") {
		return fmt.Errorf(": cdi.default-kind %q is not of the form vendor.com/class", c.CDI.DefaultKind)
	}
	return nil
}
