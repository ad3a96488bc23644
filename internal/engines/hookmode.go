package engines

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Modes of wiring nvbind into an engine (Options.Mode).
const (
	// ModeRuntime registers nvbind-runtime as a runtime (the default).
	ModeRuntime = "runtime"
	// ModeHook installs nvbind-hook in hooks.d: the precreate stage for
	// Podman, prestart for CRI-O. The engine keeps its runtime.
	ModeHook = "hook"
	// ModeGpus makes `docker run --gpus` work on Docker's own runtime: a
	// link named nvidia-container-runtime-hook to nvbind-hook.
	ModeGpus = "gpus"
)

// Modes lists the modes nvbind can configure.
var Modes = []string{ModeRuntime, ModeHook, ModeGpus}

// HookFileName is nvbind's file in a hooks.d dir.
const HookFileName = "nvbind.json"

// HookDirs are where Podman and CRI-O read hooks.d files; a file in the
// first masks a same-named one in the second.
var HookDirs = []string{"/etc/containers/oci/hooks.d", "/usr/share/containers/oci/hooks.d"}

// NvidiaHookName is the program dockerd's --gpus looks up on its PATH.
const NvidiaHookName = "nvidia-container-runtime-hook"

// DefaultGpusLink is where `--mode gpus` puts that link.
const DefaultGpusLink = "/usr/local/bin/" + NvidiaHookName

// DefaultHookPath is where packages install nvbind-hook.
const DefaultHookPath = "/usr/local/bin/nvbind-hook"

// hooksFile is a hooks.d file (containers/common hooks schema 1.0.0).
type hooksFile struct {
	Version string    `json:"version"`
	Hook    hooksHook `json:"hook"`
	When    hooksWhen `json:"when"`
	Stages  []string  `json:"stages"`
}

type hooksHook struct {
	Path    string   `json:"path"`
	Args    []string `json:"args"`
	Env     []string `json:"env,omitempty"`
	Timeout *int     `json:"timeout,omitempty"`
}

type hooksWhen struct {
	Always bool `json:"always"`
}

// defaultHookDir is where each engine reads hooks.d files by default:
// Podman both HookDirs (the first masks the second), CRI-O only the
// second. A Podman file in the first therefore never hides CRI-O's.
var defaultHookDir = map[string]string{Podman: HookDirs[0], CRIO: HookDirs[1]}

// hookStage is the stage each hooks.d engine runs nvbind-hook at: Podman
// filters the spec before the runtime sees it (precreate: the same edits
// as nvbind-runtime, env and rlimits included); CRI-O has no precreate, so
// the hook injects into the created container.
var hookStage = map[string]string{Podman: "precreate", CRIO: "prestart"}

// hookPlan writes or removes nvbind's hooks.d file. `when` is "always":
// hooks.d can match annotations but not the environment, and
// NVIDIA_VISIBLE_DEVICES is the request most containers make; a container
// with no request costs one cheap look and gets its spec back byte for
// byte. (In hooks schema 1.0.0 the conditions of `when` must all match,
// so annotations beside "always" would only narrow it.)
func hookPlan(opts Options, configure bool) (*plan, error) {
	stage, ok := hookStage[opts.Engine]
	if !ok {
		return nil, fmt.Errorf("--mode hook applies to podman and crio (docker: --mode gpus)")
	}
	path := opts.ConfigPath
	if path == "" {
		path = filepath.Join(defaultHookDir[opts.Engine], HookFileName)
	}
	notes := []string{"hooks.d is read for every container: no restart needed",
		"a container asks with -e NVIDIA_VISIBLE_DEVICES=0, or the CDI annotation; its runtime stays " + map[string]string{Podman: "Podman's", CRIO: "CRI-O's"}[opts.Engine]}
	p := &plan{path: path, owned: true}
	var err error
	if p.old, p.exists, err = readConfig(path); err != nil {
		return nil, err
	}
	if p.exists && !isNvbindHookFile(p.old) {
		return nil, fmt.Errorf("%s exists and is not nvbind's: left unchanged", path)
	}
	if !configure {
		p.remove, p.unchanged = p.exists, !p.exists
		return p, nil
	}
	f := hooksFile{Version: "1.0.0",
		Hook:   hooksHook{Path: opts.RuntimePath, Args: []string{"nvbind-hook", stage}, Env: opts.HookEnv},
		When:   hooksWhen{Always: true},
		Stages: []string{stage}}
	if p.new, err = json.MarshalIndent(f, "", "  "); err != nil {
		return nil, err
	}
	p.new = append(p.new, '\n')
	p.unchanged = p.exists && string(p.old) == string(p.new)
	p.notes = notes
	return p, nil
}

// isNvbindHookFile reports a hooks.d file that runs nvbind-hook.
func isNvbindHookFile(data []byte) bool {
	var f hooksFile
	return json.Unmarshal(data, &f) == nil && len(f.Hook.Args) > 0 && f.Hook.Args[0] == "nvbind-hook"
}

// gpusRun installs (or removes) the nvidia-container-runtime-hook link to
// nvbind-hook that dockerd's --gpus calls. It never replaces a program of
// that name: where NVIDIA's hook is installed, --gpus already works.
func gpusRun(opts Options, configure bool) (*Result, error) {
	if opts.Engine != Docker {
		return nil, fmt.Errorf("--mode gpus applies to docker (podman, crio: --mode hook)")
	}
	link := opts.ConfigPath
	if link == "" {
		link = DefaultGpusLink
	}
	res := &Result{Engine: opts.Engine, Path: link}
	target, err := os.Readlink(link)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Lstat(link); serr == nil {
			return nil, fmt.Errorf("%s exists and is not nvbind's link: left unchanged (NVIDIA's hook already serves docker --gpus)", link)
		}
		return nil, fmt.Errorf("%s: %w", link, err)
	}
	ours := exists && filepath.Base(target) == "nvbind-hook"
	if exists && !ours {
		return nil, fmt.Errorf("%s exists and is not nvbind's link (-> %s): left unchanged", link, target)
	}
	if !configure {
		if !ours {
			return res, nil
		}
		res.Changed, res.Removed = true, true
		if opts.DryRun {
			return res, nil
		}
		return res, os.Remove(link)
	}
	res.Notes = []string{"restart dockerd: it looks for " + NvidiaHookName + " on its PATH when it starts",
		"run: docker run --gpus all ... (or --gpus '\"device=0,1\"') on Docker's own runtime"}
	if other, err := exec.LookPath(NvidiaHookName); err == nil && !sameFile(other, link) {
		if t, _ := filepath.EvalSymlinks(other); filepath.Base(t) != "nvbind-hook" {
			return nil, fmt.Errorf("%s is already installed at %s: docker --gpus uses it; nvbind leaves it alone", NvidiaHookName, other)
		}
	}
	if ours && target == opts.RuntimePath {
		return res, nil
	}
	res.Changed = true
	res.Content = []byte(opts.RuntimePath)
	if opts.DryRun {
		return res, nil
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return nil, err
	}
	tmp := link + ".nvbind-tmp"
	os.Remove(tmp)
	if err := os.Symlink(opts.RuntimePath, tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	return res, nil
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// HookMode is what Detect-like probing found about nvbind's hook doors.
type HookMode struct {
	// HooksFile is nvbind's hooks.d file in effect ("" for none), and Stage
	// its stage.
	HooksFile, Stage string
	// Others are nvbind's files in later dirs, masked for Podman by the
	// first (CRI-O reads the last dir only).
	Others []string
	// GpusHook is the nvidia-container-runtime-hook dockerd would find on
	// PATH ("" for none); GpusIsNvbind says it is nvbind-hook.
	GpusHook     string
	GpusIsNvbind bool
}

// DetectHookModes looks for nvbind's hooks.d file in dirs (the first that
// has a file of that name wins, as Podman's masking does; CRI-O's is the
// last dir's, reported in Others) and for the --gpus hook on PATH.
func DetectHookModes(dirs []string) HookMode {
	var m HookMode
	masked := false
	for _, d := range dirs {
		p := filepath.Join(d, HookFileName)
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var f hooksFile
		ours := json.Unmarshal(data, &f) == nil && len(f.Hook.Args) > 0 && f.Hook.Args[0] == "nvbind-hook"
		switch {
		case ours && !masked:
			m.HooksFile, m.Stage = p, strings.Join(f.Stages, ",")
		case ours:
			m.Others = append(m.Others, p+" (stage "+strings.Join(f.Stages, ",")+")")
		}
		masked = true
	}
	if p, err := exec.LookPath(NvidiaHookName); err == nil {
		m.GpusHook = p
		if t, err := filepath.EvalSymlinks(p); err == nil && filepath.Base(t) == "nvbind-hook" {
			m.GpusIsNvbind = true
		}
	}
	return m
}
