// Package profiles turns a workload profile ("gaming", "ml", "ollama", or
// one a user defines in config.toml) into the edits nvbind-runtime applies
// to a container: driver capabilities, environment, mounts, device nodes,
// /dev/shm size and rlimits, each with the source it came from.
//
// Built-in profiles are data (data/*.toml, embedded); a profile may name a
// Go tuner (only "ollama" exists) for settings that need arithmetic.
package profiles

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/nvbind/nvbind/internal/config"
)

//go:embed data/*.toml
var dataFS embed.FS

// definition is one profile as written in a data file or config.toml.
type definition struct {
	Description  string              `toml:"description"`
	Extends      string              `toml:"extends"`
	Capabilities []string            `toml:"capabilities"`
	Env          map[string]string   `toml:"env"`
	Mounts       []mountDef          `toml:"mounts"`
	Devices      []string            `toml:"devices"`
	ShmSize      string              `toml:"shm-size"`
	Rlimits      map[string]string   `toml:"rlimits"`
	Tuner        string              `toml:"tuner"`
	Params       map[string]paramDef `toml:"params"`
	When         []whenDef           `toml:"when"`

	// name and origin are filled in by the loader.
	name   string
	origin string
}

// mountDef is a bind mount. Env is set only when the mount is made, so an
// optional mount whose host path is missing leaves no dangling variable.
type mountDef struct {
	Source   string            `toml:"source"`
	Target   string            `toml:"target"`
	Options  []string          `toml:"options"`
	Optional bool              `toml:"optional"`
	Env      map[string]string `toml:"env"`
}

// whenDef adds settings when a parameter has one of the listed values.
type whenDef struct {
	Param   string            `toml:"param"`
	Values  []string          `toml:"values"`
	Env     map[string]string `toml:"env"`
	Mounts  []mountDef        `toml:"mounts"`
	Devices []string          `toml:"devices"`
}

// paramDef declares a parameter (annotation nvbind.io/profile.<name>).
type paramDef struct {
	Description string   `toml:"description"`
	Type        string   `toml:"type"`
	Values      []string `toml:"values"`
	Default     string   `toml:"default"`
	// Auto allows the value "auto" besides the type's values.
	Auto bool `toml:"auto"`
}

// Catalog is every profile a config knows: the built-ins, overridden or
// extended by config.toml's [profiles.<name>] tables.
type Catalog struct {
	cfg     *config.Config
	builtin map[string]*definition
	user    map[string]*definition
}

// Info describes a profile for listings.
type Info struct {
	Name        string `json:"name"`
	Origin      string `json:"origin"`
	Description string `json:"description"`
}

// builtinOrigin names where built-in profiles come from.
const builtinOrigin = "built-in"

// LoadCatalog reads the embedded profiles and cfg's user profiles. It fails
// on any malformed definition, naming the profile and the problem.
func LoadCatalog(cfg *config.Config) (*Catalog, error) {
	b, err := loadBuiltins()
	if err != nil {
		return nil, err
	}
	c := &Catalog{cfg: cfg, builtin: b, user: map[string]*definition{}}
	origin := "config"
	if cfg != nil && cfg.Path != "" {
		origin = cfg.Path
	}
	if cfg != nil {
		for name, p := range cfg.Profiles {
			if err := checkProfileName(name); err != nil {
				return nil, fmt.Errorf("%s: [profiles.%s]: %w", origin, name, err)
			}
			c.user[name] = fromConfig(name, origin, p)
		}
	}
	// Check every chain now so a broken user profile is reported even when
	// another profile is asked for.
	for _, name := range c.Names() {
		if _, err := c.chain(name); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func loadBuiltins() (map[string]*definition, error) {
	entries, err := dataFS.ReadDir("data")
	if err != nil {
		return nil, fmt.Errorf("read built-in profiles: %w", err)
	}
	out := map[string]*definition{}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".toml")
		data, err := dataFS.ReadFile(path.Join("data", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read built-in profile %s: %w", name, err)
		}
		d, err := parseDefinition(data)
		if err != nil {
			return nil, fmt.Errorf("built-in profile %s: %w", name, err)
		}
		d.name, d.origin = name, builtinOrigin
		out[name] = d
	}
	return out, nil
}

// parseDefinition decodes one profile strictly: unknown keys are errors.
func parseDefinition(data []byte) (*definition, error) {
	d := &definition{}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(d); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) && len(strict.Errors) > 0 {
			e := strict.Errors[0]
			row, _ := e.Position()
			return nil, fmt.Errorf("line %d: unknown key %q", row, strings.Join(e.Key(), "."))
		}
		return nil, err
	}
	return d, nil
}

func fromConfig(name, origin string, p config.Profile) *definition {
	d := &definition{
		Description:  p.Description,
		Extends:      p.Extends,
		Capabilities: p.Capabilities,
		Env:          p.Env,
		Devices:      p.Devices,
		ShmSize:      p.ShmSize,
		Rlimits:      p.Rlimits,
		name:         name,
		origin:       origin,
	}
	for _, m := range p.Mounts {
		d.Mounts = append(d.Mounts, mountDef{Source: m.Source, Target: m.Target, Options: m.Options, Optional: m.Optional})
	}
	return d
}

// Capabilities returns the driver capabilities profile name asks for. The
// runtime needs them before it injects devices, ahead of the full Resolve.
func (c *Catalog) Capabilities(name string) ([]string, error) {
	chain, err := c.chain(name)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, d := range chain {
		for _, cap := range d.Capabilities {
			if !contains(validCapabilities, cap) {
				return nil, fmt.Errorf("profile %s (%s): unknown capability %q (valid: %s)", d.name, originOf(d), cap, strings.Join(validCapabilities, ", "))
			}
			set[cap] = true
		}
	}
	var out []string
	for _, cap := range validCapabilities {
		if set[cap] {
			out = append(out, cap)
		}
	}
	return out, nil
}

// Names lists every profile, sorted.
func (c *Catalog) Names() []string {
	set := map[string]bool{}
	for n := range c.builtin {
		set[n] = true
	}
	for n := range c.user {
		set[n] = true
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// List describes every profile.
func (c *Catalog) List() []Info {
	var out []Info
	for _, n := range c.Names() {
		chain, err := c.chain(n)
		if err != nil {
			continue // LoadCatalog checked every chain
		}
		top := chain[len(chain)-1]
		desc := ""
		for _, d := range chain {
			if d.Description != "" {
				desc = d.Description
			}
		}
		out = append(out, Info{Name: n, Origin: originOf(top), Description: desc})
	}
	return out
}

func originOf(d *definition) string {
	if d.origin == builtinOrigin {
		return builtinOrigin
	}
	return "config " + d.origin
}

// maxChain bounds `extends` chains; deeper is surely a mistake.
const maxChain = 8

// chain returns the definitions a profile is built from, root first. A
// user profile named like a built-in one layers over it; `extends` names a
// user profile first, then a built-in one.
func (c *Catalog) chain(name string) ([]*definition, error) {
	var rev []*definition
	seen := map[*definition]bool{}
	d, err := c.lookup(name, nil)
	if err != nil {
		return nil, err
	}
	for d != nil {
		if seen[d] {
			return nil, fmt.Errorf("profile %s: extends loop through %s", name, d.name)
		}
		seen[d] = true
		rev = append(rev, d)
		if len(rev) > maxChain {
			return nil, fmt.Errorf("profile %s: extends chain longer than %d", name, maxChain)
		}
		parent := d.Extends
		if parent == "" && d.origin != builtinOrigin && c.builtin[d.name] != nil {
			parent = d.name
		}
		if parent == "" {
			break
		}
		from := d
		if d, err = c.lookup(parent, from); err != nil {
			return nil, err
		}
	}
	out := make([]*definition, len(rev))
	for i, d := range rev {
		out[len(rev)-1-i] = d
	}
	return out, nil
}

// lookup finds name; from is the profile whose `extends` names it (nil for
// the top). A user profile extending its own name means the built-in one.
func (c *Catalog) lookup(name string, from *definition) (*definition, error) {
	if from != nil && from.origin != builtinOrigin && from.name == name {
		if d := c.builtin[name]; d != nil {
			return d, nil
		}
	} else if from != nil && from.origin == builtinOrigin {
		if d := c.builtin[name]; d != nil {
			return d, nil
		}
	} else if d := c.user[name]; d != nil {
		return d, nil
	} else if d := c.builtin[name]; d != nil {
		return d, nil
	}
	if from != nil {
		return nil, fmt.Errorf("profile %s (%s) extends unknown profile %q (valid: %s)",
			from.name, originOf(from), name, strings.Join(c.Names(), ", "))
	}
	return nil, fmt.Errorf("unknown profile %q (valid: %s)", name, strings.Join(c.Names(), ", "))
}

// checkProfileName keeps names usable in annotations and file names.
func checkProfileName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("invalid profile name %q", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("invalid profile name %q: lower-case letters, digits, '-', '_' and '.' only", name)
		}
	}
	return nil
}
