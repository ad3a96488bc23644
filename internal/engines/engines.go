// Package engines wires nvbind-runtime into the container engines people
// run (Docker, containerd, Podman, CRI-O), finds out which of them have it,
// and runs the `nvbind doctor` checks.
//
// Engine config files belong to the user: nvbind changes only the entries
// it needs, keeps every other key, comment and the order of the file, keeps
// a one-time backup of the original (FILE.nvbind.bak), writes atomically,
// and writes nothing when the file already says what nvbind would write.
package engines

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/nvbind/nvbind/internal/atomicfile"
)

// RuntimeName is the name engines know nvbind-runtime by: docker
// --runtime=nvbind, the containerd/CRI-O handler and RuntimeClass handler,
// Podman's [engine.runtimes] entry.
const RuntimeName = "nvbind"

// DefaultRuntimePath is where packages install nvbind-runtime.
const DefaultRuntimePath = "/usr/local/bin/nvbind-runtime"

// Engine names accepted by Configure.
const (
	Docker     = "docker"
	Containerd = "containerd"
	Podman     = "podman"
	CRIO       = "crio"
)

// Names lists the engines nvbind can configure.
var Names = []string{Docker, Containerd, Podman, CRIO}

// Options selects what Configure and Unconfigure do.
type Options struct {
	Engine string
	// ConfigPath is the file to edit; "" means the engine's usual file.
	ConfigPath string
	// RuntimePath is the absolute path of nvbind-runtime to register.
	RuntimePath string
	// SetAsDefault makes nvbind Docker's default-runtime.
	SetAsDefault bool
	// CDI turns on Docker's CDI support (features.cdi); with Unconfigure it
	// turns it off again.
	CDI bool
	// DryRun computes the result and touches nothing.
	DryRun bool
	// Mode is ModeRuntime (""), ModeHook or ModeGpus; in the hook modes
	// RuntimePath is nvbind-hook's path and ConfigPath the hooks.d file or
	// the link to write (see hookmode.go).
	Mode string
	// HookEnv is the environment a hooks.d file gives nvbind-hook.
	HookEnv []string
}

// Result says what Configure or Unconfigure did (or, with DryRun, would do).
type Result struct {
	Engine string
	// Path is the file written, or removed when Removed.
	Path    string
	Changed bool
	Removed bool
	// Content is the file's new content (empty when Removed).
	Content []byte
	// Backup is the copy of the original, when this run made one.
	Backup string
	// Notes are things the user should know or do next.
	Notes []string
}

// ParseError is a config file nvbind could not read; the file is left alone.
type ParseError struct {
	Path string
	Err  error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s: cannot parse, left unchanged: %v", e.Path, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// plan is one file change an engine wants.
type plan struct {
	path string
	// old is the current content; exists says whether the file is there.
	old    []byte
	exists bool
	// new is the wanted content; remove deletes the file instead.
	new    []byte
	remove bool
	// owned: the whole file is nvbind's (a drop-in), so it needs no backup.
	owned bool
	// unchanged: the file already says what nvbind wants.
	unchanged bool
	notes     []string
}

// Configure registers nvbind-runtime with opts.Engine.
func Configure(opts Options) (*Result, error) {
	return run(opts, true)
}

// Unconfigure removes what Configure added, and nothing else.
func Unconfigure(opts Options) (*Result, error) {
	return run(opts, false)
}

func run(opts Options, configure bool) (*Result, error) {
	if configure {
		if opts.RuntimePath == "" {
			opts.RuntimePath = DefaultRuntimePath
		}
		if !filepath.IsAbs(opts.RuntimePath) {
			return nil, fmt.Errorf("runtime path %q is not absolute", opts.RuntimePath)
		}
	}
	switch opts.Mode {
	case "", ModeRuntime:
	case ModeHook, ModeGpus:
		if opts.SetAsDefault || opts.CDI {
			return nil, fmt.Errorf("--set-as-default and --cdi apply to --mode runtime only")
		}
		if opts.Mode == ModeGpus {
			return gpusRun(opts, configure)
		}
		p, err := hookPlan(opts, configure)
		if err != nil {
			return nil, err
		}
		return apply(opts.Engine, p, opts.DryRun)
	default:
		return nil, fmt.Errorf("unknown mode %q (one of %s)", opts.Mode, strings.Join(Modes, ", "))
	}
	if opts.Engine != Docker && (opts.SetAsDefault || opts.CDI) {
		return nil, fmt.Errorf("--set-as-default and --cdi apply to docker only")
	}
	var p *plan
	var err error
	switch opts.Engine {
	case Docker:
		p, err = dockerPlan(opts, configure)
	case Containerd:
		p, err = containerdPlan(opts, configure, defaultContainerdVersion)
	case Podman:
		p, err = podmanPlan(opts, configure, defaultPodmanFiles())
	case CRIO:
		p, err = crioPlan(opts, configure)
	default:
		return nil, fmt.Errorf("unknown engine %q (one of %s)", opts.Engine, strings.Join(Names, ", "))
	}
	if err != nil {
		return nil, err
	}
	return apply(opts.Engine, p, opts.DryRun)
}

// readConfig reads path; a missing file is empty and not an error.
func readConfig(path string) (data []byte, exists bool, err error) {
	data, err = os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	return data, true, nil
}

// dropInPlan plans the TOML drop-in nvbind owns at path: unconfigure
// removes it; configure writes header plus what set adds.
func dropInPlan(path, header string, configure bool, notes []string, set func(*tomlDoc) error) (*plan, error) {
	p := &plan{path: path, owned: true, notes: notes}
	var err error
	if p.old, p.exists, err = readConfig(path); err != nil {
		return nil, err
	}
	if !configure {
		p.remove, p.unchanged = p.exists, !p.exists
		return p, nil
	}
	d, _ := parseTOMLDoc([]byte(header), false)
	if err := set(d); err != nil {
		return nil, err
	}
	p.new = d.text
	p.unchanged = p.exists && string(p.old) == string(p.new)
	return p, nil
}

// editPlan plans an in-place edit of the user's TOML file at path: edit
// adds nvbind's marked lines (configure) or takes them out (unconfigure).
func editPlan(path string, configure bool, notes []string, edit func(*tomlDoc) error) (*plan, error) {
	old, exists, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	doc, err := parseTOMLDoc(old, true)
	if err != nil {
		return nil, &ParseError{Path: path, Err: err}
	}
	p := &plan{path: path, old: old, exists: exists, notes: notes}
	if err := edit(doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if string(doc.text) == string(old) && (exists || !configure) {
		p.unchanged = true
		return p, nil
	}
	p.new = doc.text
	return p, nil
}

// eachTOMLFile calls fn with each of files that exists, parsed, in order.
// A file that cannot be read is skipped; one that does not parse ends the
// walk with a *ParseError.
func eachTOMLFile(files []string, fn func(file string, d *tomlDoc)) error {
	for _, f := range files {
		data, exists, err := readConfig(f)
		if err != nil || !exists {
			continue
		}
		d, err := parseTOMLDoc(data, false)
		if err != nil {
			return &ParseError{Path: f, Err: err}
		}
		fn(f, d)
	}
	return nil
}

// apply writes (or removes) the planned file: backup first, then an atomic
// replace. Nothing is written when nothing changes.
func apply(engine string, p *plan, dryRun bool) (*Result, error) {
	res := &Result{Engine: engine, Path: p.path, Notes: p.notes}
	switch {
	case p.unchanged:
		res.Content = p.old
	case p.remove:
		res.Changed, res.Removed = p.exists, p.exists
	default:
		res.Content = p.new
		res.Changed = !p.exists || string(p.old) != string(p.new)
	}
	if !res.Changed || dryRun {
		return res, nil
	}
	if p.exists && !p.owned {
		bak := p.path + ".nvbind.bak"
		if _, err := os.Lstat(bak); errors.Is(err, fs.ErrNotExist) {
			perm := os.FileMode(0o600)
			if fi, err := os.Stat(p.path); err == nil {
				perm = fi.Mode().Perm()
			}
			if err := atomicfile.Write(bak, p.old, perm); err != nil {
				return nil, fmt.Errorf("backup: %w", err)
			}
			res.Backup = bak
		}
	}
	if p.remove {
		if err := os.Remove(p.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove %s: %w", p.path, err)
		}
		return res, nil
	}
	if err := os.MkdirAll(filepath.Dir(p.path), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(p.path), err)
	}
	if err := atomicfile.Write(p.path, p.new, 0o644); err != nil {
		return nil, err
	}
	return res, nil
}
