package config

import (
	"github.com/pelletier/go-toml/v2/unstable"
)

// fast.go reads the usual config.toml, the [runtime], [cdi], [driver],
// [hook] and [ledger] tables with their string, bool and string-list keys, with go-toml's
// parser alone. Its decoder's reflection was most of what loading the
// config cost nvbind-runtime on every call. Anything else (profiles,
// policy, a dotted or unknown key, another value type, a key or table
// given twice, a syntax error) is left to the decoder, so every error
// message and every other file decodes exactly as before.

// fastStrings and fastLists are the keys parseFast takes, by table.key.
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

// parseFast decodes data over cfg and reports true, or leaves cfg as it
// was and reports false when the decoder must read data.
func parseFast(data []byte, cfg *Config) bool {
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
