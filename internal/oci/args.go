// Package oci understands just enough of runc's command line and of an OCI
// bundle for nvbind-runtime to find the spec of a `create` or `run`, rewrite
// it, and hand the unchanged command line on to the low-level runtime.
package oci

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Args is a parsed low-level runtime command line. The original argv is
// kept verbatim: nvbind never rewrites what it passes on.
type Args struct {
	// Argv is the command line without the program name, exactly as given.
	Argv []string
	// Verb is the subcommand ("create", "run", "state", ...); "" when none
	// (for example `--version`).
	Verb string
	// LogPath and LogFormat are runc's --log and --log-format globals.
	LogPath   string
	LogFormat string
	// Debug is runc's --debug global: nvbind logs at debug level too.
	Debug bool
	// Bundle is the bundle directory of create/run: --bundle/-b, else the
	// working directory. Empty for other verbs.
	Bundle string
	// ContainerID is the first positional argument after the verb.
	ContainerID string
	// Root is runc's --root global ("" when not given).
	Root string
}

// globalValueFlags are runc's global flags that take a value.
var globalValueFlags = map[string]bool{
	"root": true, "log": true, "log-format": true, "criu": true, "rootless": true,
}

// verbValueFlags are flags of create/run that take a value; every other
// flag is a boolean.
var verbValueFlags = map[string]bool{
	"bundle": true, "b": true, "console-socket": true, "pid-file": true,
	"preserve-fds": true, "pidfd-socket": true,
}

// flagName splits "--name=value", "-name value" or "--name" into name,
// inline value and whether a value was inline. Like runc (urfave/cli on Go's
// flag package) one or two leading dashes mean the same.
func flagName(arg string) (name, value string, inline bool) {
	name = strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		return name[:i], name[i+1:], true
	}
	return name, "", false
}

func isFlag(arg string) bool { return len(arg) > 1 && arg[0] == '-' }

// ParseArgs parses argv (without the program name). cwd is the directory
// a create/run without --bundle uses.
func ParseArgs(argv []string, cwd string) (*Args, error) {
	a := &Args{Argv: argv}
	i := 0
	// Global flags, up to the verb.
	for ; i < len(argv); i++ {
		arg := argv[i]
		if arg == "--" {
			i++
			break
		}
		if !isFlag(arg) {
			break
		}
		name, value, inline := flagName(arg)
		if name == "debug" {
			a.Debug = !inline || value == "true" || value == "1"
			continue
		}
		if !globalValueFlags[name] {
			continue
		}
		if !inline {
			if i+1 >= len(argv) {
				return nil, fmt.Errorf("global flag %s needs a value", arg)
			}
			i++
			value = argv[i]
		}
		switch name {
		case "log":
			a.LogPath = value
		case "log-format":
			a.LogFormat = value
		case "root":
			a.Root = value
		}
	}
	if i >= len(argv) {
		return a, nil
	}
	a.Verb = argv[i]
	if a.Verb == "delete" {
		a.ContainerID = deleteTarget(argv[i+1:])
		return a, nil
	}
	if a.Verb != "create" && a.Verb != "run" {
		return a, nil
	}
	for i++; i < len(argv); i++ {
		arg := argv[i]
		if arg == "--" {
			if i+1 < len(argv) && a.ContainerID == "" {
				a.ContainerID = argv[i+1]
			}
			break
		}
		if !isFlag(arg) {
			if a.ContainerID == "" {
				a.ContainerID = arg
			}
			continue
		}
		name, value, inline := flagName(arg)
		if !verbValueFlags[name] {
			continue
		}
		if !inline {
			if i+1 >= len(argv) {
				return nil, fmt.Errorf("%s flag %s needs a value", a.Verb, arg)
			}
			i++
			value = argv[i]
		}
		if name == "bundle" || name == "b" {
			a.Bundle = value
		}
	}
	if a.Bundle == "" {
		a.Bundle = cwd
	}
	if !filepath.IsAbs(a.Bundle) {
		a.Bundle = filepath.Join(cwd, a.Bundle)
	}
	return a, nil
}

// Intercepts reports whether the verb creates a container, so its spec may
// need GPU edits.
func (a *Args) Intercepts() bool { return a.Verb == "create" || a.Verb == "run" }
