// Package config loads nvbind's config.toml: built-in defaults, overridden by
// the file named in NVBIND_CONFIG or /etc/nvbind/config.toml. A missing file
// means defaults; a malformed file or an unknown key is an error that names
// the file and the line.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/nvbind/nvbind/internal/configcore"
)

// The types, defaults and checks live in internal/configcore, which
// nvbind-runtime reads config.toml with during package init.
type (
	Config      = configcore.Config
	Runtime     = configcore.Runtime
	CDI         = configcore.CDI
	Driver      = configcore.Driver
	Hook        = configcore.Hook
	Ledger      = configcore.Ledger
	Profile     = configcore.Profile
	Mount       = configcore.Mount
	Policy      = configcore.Policy
	PolicyRule  = configcore.PolicyRule
	PolicyMatch = configcore.PolicyMatch
	PolicyAllow = configcore.PolicyAllow
)

// DefaultPath is the system config file.
const DefaultPath = configcore.DefaultPath

// EnvPath names an alternative config file.
const EnvPath = configcore.EnvPath

// Default returns the built-in configuration.
func Default() *Config { return configcore.Default() }

// Path returns the config file to read: $NVBIND_CONFIG, else DefaultPath.
func Path() string { return configcore.Path() }

// parseFast is configcore.ParseFast (fast.go's tests compare it with the
// decoder).
func parseFast(data []byte, cfg *Config) bool { return configcore.ParseFast(data, cfg) }

// Load reads the config file from Path(); a missing file gives defaults.
func Load() (*Config, error) {
	return LoadFile(Path())
}

// LoadFile reads path over the defaults. A missing file gives defaults.
func LoadFile(path string) (*Config, error) {
	return configcore.Load(path, Parse)
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
