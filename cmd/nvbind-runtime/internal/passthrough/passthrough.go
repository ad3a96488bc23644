// Package passthrough hands a create that asks for no GPU to the low-level
// runtime while nvbind-runtime is still initialising its packages.
//
// Most containers ask for no GPU, and for them nvbind-runtime is overhead
// only. Go runs the init of every package a program links before main,
// and the packages only the GPU path needs (the CDI library's YAML and
// name validation, libcontainer's, the profiles, the policy) cost more to
// initialise than the rest of that create. Go initialises packages in
// import-path order, each after the packages it imports (the spec's
// "Package initialization"; the linker orders even packages without init
// work so): this package's path (github.com/nvbind/nvbind/cmd/...) sorts
// before those of the heavy packages (github.com/nvbind/nvbind/internal/...,
// go.yaml.in, golang.org/x, tags.cncf.io), and it imports only light
// packages, none of which imports strings, path/filepath or os/exec
// (internal/configcore, internal/handoff, internal/reqscan): their paths
// sort after the heavy ones', so importing them would hold this init back
// until the heavy packages are initialised. So its init runs right after
// reflect's: it runs Begin, main's whole prologue, and for a create
// without a request records the runtime and execs it, as main would.
//
// Anything else (another verb, a command line, config.toml or runtime it
// cannot use, debug logging, a spec that may hold a request or cannot be
// read) goes on to main, which takes the Plan made here instead of making
// it again, or, where init could not tell (a config.toml that needs the
// full TOML decoder, a runtime found through a relative PATH entry), makes
// it with the full decoder and os/exec. TestRuntimePassthroughInit in
// test/integration checks the order on the built program.
package passthrough

import (
	"errors"
	"os"
	"path"

	"github.com/nvbind/nvbind/internal/configcore"
	"github.com/nvbind/nvbind/internal/handoff"
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
	Cfg    *configcore.Config
	CfgErr error
	// Runtime is the low-level runtime (for a container's later verbs the
	// one that created it), "" when RtErr says why none was found.
	Runtime string
	RtErr   error
	// Args is the parsed command line, ArgErr why it is not exact.
	Args   *handoff.Args
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

// Deps are how Begin reads config.toml and looks runtimes up.
type Deps struct {
	// Parse is config.Parse (TOML's decoder for what
	// configcore.ParseFast leaves); nil: ParseFastOnly.
	Parse func([]byte, *configcore.Config) error
	// LookPath is os/exec's LookPath; nil: handoff.LookPath.
	LookPath func(string) (string, error)
}

// Begin is the prologue of every nvbind-runtime call. It sets
// handoff.DefaultRecordDir from config.toml's state-dir. With light Deps
// (nil members) it may leave CfgErr wrapping configcore.ErrNeedsDecoder or
// RtErr wrapping handoff.ErrUnsure: main must begin again with full ones.
func Begin(argv []string, deps Deps) *Plan {
	p := &Plan{Argv: argv}
	parse := deps.Parse
	if parse == nil {
		parse = configcore.ParseFastOnly
	}
	p.Cfg, p.CfgErr = configcore.Load(configcore.Path(), parse)
	if errors.Is(p.CfgErr, configcore.ErrNeedsDecoder) {
		return p // main begins again (see complete)
	}
	if p.CfgErr != nil {
		// state/kill/delete must still reach a runtime so containers can
		// be cleaned up; a create refuses in main.
		p.Cfg = configcore.Default()
	}
	if p.Cfg.Runtime.StateDir != "" {
		handoff.DefaultRecordDir = path.Join(p.Cfg.Runtime.StateDir, "runtimes")
	}
	// argv, as the runtime it goes to parses it.
	p.Runtime, p.RtErr = handoff.FindRuntime(p.Cfg.Runtime.Runtimes, deps.LookPath)
	if errors.Is(p.RtErr, handoff.ErrUnsure) {
		return p
	}
	p.Args, p.ArgErr = handoff.ParseArgsIn(argv, getwd, handoff.FlavourOf(p.Runtime))
	if p.ArgErr == nil && !p.Args.Intercepts() {
		// The runtime that created the container handles the rest of its
		// life, whatever config.toml says now.
		if rec, ok := handoff.RecordedRuntime(p.Args); ok {
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
	p.Spec, p.SpecErr = handoff.ReadSpec(p.Args.Config)
	prefixes := p.Cfg.AnnotationPrefixes()
	switch {
	case errors.Is(p.SpecErr, handoff.ErrTooLarge):
		// Too large to edit, but only a GPU request needs editing.
		if may, err := handoff.FileMayRequest(p.Args.Config, prefixes); err == nil && !may {
			p.SpecErr, p.NoRequest = nil, true
		}
	case p.SpecErr == nil:
		p.NoRequest = !reqscan.MayRequestWith(p.Spec, prefixes)
	}
	return p
}

// getwd is the directory a create without --bundle, or with a relative
// one, runs in; asked only then.
func getwd() string {
	wd, _ := os.Getwd()
	return wd
}

// complete reports whether p is what Begin with full Deps would make.
func (p *Plan) complete() bool {
	return !errors.Is(p.CfgErr, configcore.ErrNeedsDecoder) && !errors.Is(p.RtErr, handoff.ErrUnsure)
}

// passes reports whether main would hand p's call to the runtime without
// a word or an edit: a create without a request, logging below debug.
func (p *Plan) passes() bool {
	return p.complete() && p.NoRequest && !equalFold(p.Level, "debug") && !equalFold(p.Level, "trace")
}

// early is the Plan init made for this process's command line.
var early *Plan

func init() {
	argv := os.Args[1:]
	if !handoff.MentionsIntercept(argv) {
		// No create: nothing init could save main.
		return
	}
	early = Begin(argv, Deps{})
	if !early.passes() {
		return
	}
	// main's create path without a request: record the runtime, exec it.
	// On a failure main, which logs it, tries again.
	if handoff.RecordRuntime(early.Args, early.Runtime) != nil {
		return
	}
	handoff.Exec(early.Runtime, argv)
}

// Started returns the Plan for argv: the one init made when it is this
// process's command line and complete, else a new one made with deps.
func Started(argv []string, deps Deps) *Plan {
	if early != nil && early.complete() && sameStrings(early.Argv, argv) {
		return early
	}
	return Begin(argv, deps)
}

// sameStrings is slices.Equal, whose package would hold this init back
// (see the package comment).
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

// equalFold is strings.EqualFold for an ASCII t (see the package comment).
func equalFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != t[i] {
			return false
		}
	}
	return true
}
