// Package passthrough hands a create that asks for no GPU to the low-level
// runtime while nvbind-runtime is still initialising its packages.
//
// Most containers ask for no GPU, and for them nvbind-runtime is pure
// overhead. Go runs the init of every package a program links before main,
// and the packages only the GPU path needs (the CDI library's YAML and name
// validation, the profiles, the policy) cost more to initialise than the
// rest of the answer. Go initialises packages in import-path order, each
// after the packages it imports (the spec's "Package initialization"), and
// this package's path (github.com/nvbind/nvbind/cmd/...) sorts before those
// of the heavy packages (github.com/nvbind/nvbind/internal/..., go.yaml.in,
// tags.cncf.io), so its init runs before theirs: it runs Begin, main's
// whole prologue, and for a create without a request records the runtime
// and execs it, as main would, before they run.
//
// Anything else (another verb, a command line or config.toml it cannot
// use, debug logging, a spec that may hold a request or cannot be read)
// goes on to main, which takes the Plan init made instead of making it
// again. TestRuntimePassthroughInit in test/integration checks the order on
// the built program.
package passthrough

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/oci"
	"github.com/nvbind/nvbind/internal/reqscan"
)

// Plan is what nvbind-runtime knows before it logs or edits anything: its
// config, the low-level runtime, the parsed command line and, for a create
// it may go on with, the spec.
type Plan struct {
	// Argv is the command line without the program name.
	Argv []string
	// Cfg is config.toml, or the built-in defaults when CfgErr says why
	// it could not be loaded.
	Cfg    *config.Config
	CfgErr error
	// Runtime is the low-level runtime (for a container's later verbs the
	// one that created it), "" when RtErr says why none was found.
	Runtime string
	RtErr   error
	// Args is the parsed command line, ArgErr why it is not exact.
	Args   *oci.Args
	ArgErr error
	// Level is the log level: config.toml's, or debug for runc's --debug.
	Level string
	// Spec is the spec of a create that got this far (no error above),
	// SpecErr why it could not be read. NoRequest: the spec holds no GPU
	// request (Spec is nil for one too large to read whole).
	Spec      []byte
	SpecErr   error
	NoRequest bool
}

// Begin is the prologue of every nvbind-runtime call. It sets
// oci.DefaultRecordDir from config.toml's state-dir.
func Begin(argv []string) *Plan {
	p := &Plan{Argv: argv}
	cwd, _ := os.Getwd()
	p.Cfg, p.CfgErr = config.Load()
	if p.CfgErr != nil {
		// state/kill/delete must still reach a runtime so containers can
		// be cleaned up; a create refuses in main.
		p.Cfg = config.Default()
	}
	if p.Cfg.Runtime.StateDir != "" {
		oci.DefaultRecordDir = filepath.Join(p.Cfg.Runtime.StateDir, "runtimes")
	}
	// argv, as the runtime it goes to parses it.
	p.Runtime, p.RtErr = oci.FindRuntime(p.Cfg.Runtime.Runtimes)
	p.Args, p.ArgErr = oci.ParseArgs(argv, cwd, oci.FlavourOf(p.Runtime))
	if p.ArgErr == nil && !p.Args.Intercepts() {
		// The runtime that created the container handles the rest of its
		// life, whatever config.toml says now.
		if rec, ok := oci.RecordedRuntime(p.Args); ok {
			p.Runtime, p.RtErr = rec, nil
		}
	}
	p.Level = p.Cfg.Runtime.LogLevel
	if p.Args.Debug {
		p.Level = "debug"
	}
	if p.ArgErr != nil || p.CfgErr != nil || p.RtErr != nil || !p.Args.Intercepts() {
		return p
	}
	p.Spec, p.SpecErr = oci.ReadSpec(p.Args.Config)
	prefixes := p.Cfg.AnnotationPrefixes()
	switch {
	case errors.Is(p.SpecErr, oci.ErrTooLarge):
		// Too large to edit, but only a GPU request needs editing.
		if may, err := oci.FileMayRequest(p.Args.Config, prefixes); err == nil && !may {
			p.SpecErr, p.NoRequest = nil, true
		}
	case p.SpecErr == nil:
		p.NoRequest = !reqscan.MayRequestWith(p.Spec, prefixes)
	}
	return p
}

// quiet reports whether main would log nothing on p's way through: below
// debug level its only messages are warnings and errors.
func (p *Plan) quiet() bool {
	return !equalFold(p.Level, "debug") && !equalFold(p.Level, "trace")
}

// early is the Plan init made for this process's command line.
var early *Plan

func init() {
	p := Begin(os.Args[1:])
	early = p
	if !p.NoRequest || !p.quiet() {
		return
	}
	// main's create path without a request: record the runtime, exec it.
	// On a failure main, which logs it, tries again.
	if oci.RecordRuntime(p.Args, p.Runtime) != nil {
		return
	}
	oci.Exec(p.Runtime, p.Argv)
}

// Started returns the Plan for argv: the one init made when argv is this
// process's command line, else a new one.
func Started(argv []string) *Plan {
	if early != nil && sameStrings(early.Argv, argv) {
		return early
	}
	return Begin(argv)
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// equalFold is strings.EqualFold for ASCII.
func equalFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}
