package main

import (
	"fmt"
	"github.com/spf13/cobra"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/engines"
)

func init() { addCommand(newRuntimeCmd) }

func newRuntimeCmd(stdout, stderr io.Writer) *cobra.Command {
	g := group("runtime", "register nvbind-runtime with docker, containerd, podman or crio (configure|unconfigure)", stdout, stderr,
		newRuntimeVerbCmd("configure", stdout, stderr), newRuntimeVerbCmd("unconfigure", stdout, stderr))
	g.Long = runtimeUsage
	return g
}

// runtimeCmd runs `nvbind runtime args...`.
func runtimeCmd(args []string, stdout, stderr io.Writer) int {
	return execute(append([]string{"runtime"}, args...), stdout, stderr)
}

func newRuntimeVerbCmd(verb string, stdout, stderr io.Writer) *cobra.Command {
	configure := verb == "configure"
	var opts engines.Options
	var printRC bool
	c := &cobra.Command{
		Use:   verb + " --runtime docker|containerd|podman|crio",
		Short: "register nvbind-runtime as the runtime \"nvbind\"",
		Args:  noArgs(stderr),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Mode == engines.ModeHook || opts.Mode == engines.ModeGpus {
				hookModeOptions(&opts, cmd.Flags().Changed("path"))
			}
			return code(runtimeVerb(verb, opts, printRC, stdout, stderr))
		},
	}
	if !configure {
		c.Short = "remove only what configure added"
	}
	fs := c.Flags()
	fs.StringVar(&opts.Engine, "runtime", "", "engine to configure: "+strings.Join(engines.Names, ", "))
	fs.StringVar(&opts.ConfigPath, "config", "", "config file to edit (default: the engine's own; containerd's main config, whose imports decide on a drop-in)")
	fs.BoolVar(&opts.DryRun, "dry-run", false, "print the result and change nothing")
	fs.BoolVar(&opts.CDI, "cdi", false, "docker: turn on features.cdi (unconfigure: turn it off)")
	fs.StringVar(&opts.Mode, "mode", engines.ModeRuntime, "runtime: register nvbind-runtime; hook: podman/crio hooks.d file (--config: the file); gpus: docker --gpus link (--config: the link)")
	if configure {
		fs.StringVar(&opts.RuntimePath, "path", defaultRuntimePath(), "nvbind-runtime to register (nvbind-hook with --mode hook|gpus)")
		fs.BoolVar(&opts.SetAsDefault, "set-as-default", false, "docker: make nvbind the default-runtime")
		fs.BoolVar(&printRC, "print-runtimeclass", false, "containerd, crio: print the Kubernetes RuntimeClass for the nvbind handler and change nothing")
	}
	c.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions(engines.Modes, cobra.ShellCompDirectiveNoFileComp))
	c.RegisterFlagCompletionFunc("runtime", cobra.FixedCompletions(engines.Names, cobra.ShellCompDirectiveNoFileComp))
	return c
}

func runtimeVerb(verb string, opts engines.Options, printRC bool, stdout, stderr io.Writer) int {
	configure := verb == "configure"
	if opts.Engine == "" {
		return failTo(stderr, 2, "runtime %s: --runtime is required (%s)", verb, strings.Join(engines.Names, ", "))
	}
	if printRC {
		if opts.Engine != engines.Containerd && opts.Engine != engines.CRIO {
			return failTo(stderr, 2, "--print-runtimeclass applies to containerd and crio (Kubernetes runtimes)")
		}
		fmt.Fprint(stdout, engines.RuntimeClassYAML())
		return 0
	}
	if configure {
		abs, err := filepath.Abs(opts.RuntimePath)
		if err != nil {
			return failTo(stderr, 2, "--path: %v", err)
		}
		opts.RuntimePath = abs
		if _, err := os.Stat(abs); err != nil {
			fmt.Fprintf(stderr, "nvbind: warning: %s does not exist (yet); engines will fail to start containers with nvbind until it does\n", abs)
		}
	}
	var res *engines.Result
	var err error
	if configure {
		res, err = engines.Configure(opts)
	} else {
		res, err = engines.Unconfigure(opts)
	}
	if err != nil {
		return failTo(stderr, 1, "%v", err)
	}
	printResult(stdout, res, configure, opts.DryRun)
	return 0
}

func printResult(w io.Writer, res *engines.Result, configure, dryRun bool) {
	switch {
	case !res.Changed && configure:
		fmt.Fprintf(w, "%s: %s already registers nvbind; nothing changed\n", res.Engine, res.Path)
		return
	case !res.Changed:
		fmt.Fprintf(w, "%s: %s has nothing nvbind added; nothing changed\n", res.Engine, res.Path)
		return
	case dryRun && res.Removed:
		fmt.Fprintf(w, "would remove %s\n", res.Path)
		return
	case dryRun:
		fmt.Fprintf(w, "would write %s:\n%s", res.Path, res.Content)
		return
	case res.Removed:
		fmt.Fprintf(w, "%s: removed %s\n", res.Engine, res.Path)
	default:
		fmt.Fprintf(w, "%s: wrote %s\n", res.Engine, res.Path)
	}
	if res.Backup != "" {
		fmt.Fprintf(w, "  original kept as %s\n", res.Backup)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "  %s\n", n)
	}
}

// hookModeOptions sets what the hook modes need: nvbind-hook (beside this
// nvbind unless --path says otherwise), and for a hooks.d file the config
// file this nvbind reads, so the hook reads the same one.
func hookModeOptions(opts *engines.Options, pathSet bool) {
	if !pathSet {
		opts.RuntimePath = engines.DefaultHookPath
		if exe, err := os.Executable(); err == nil {
			p := filepath.Join(filepath.Dir(exe), "nvbind-hook")
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				opts.RuntimePath = p
			}
		}
	}
	if c := os.Getenv(config.EnvPath); c != "" {
		if abs, err := filepath.Abs(c); err == nil {
			opts.HookEnv = []string{config.EnvPath + "=" + abs}
		}
	}
}

// defaultRuntimePath is the nvbind-runtime installed beside this nvbind,
// else the usual install location.
func defaultRuntimePath() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "nvbind-runtime")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return engines.DefaultRuntimePath
}

const runtimeUsage = `configure registers nvbind-runtime as the runtime "nvbind" with an engine;
unconfigure removes only what configure added. The original file is kept
once as FILE.nvbind.bak; a second run changes nothing.

  nvbind runtime configure --runtime docker|containerd|podman|crio [flags]
  nvbind runtime unconfigure --runtime docker|containerd|podman|crio [flags]

Hook modes keep the engine's own runtime (see docs/modes.md):
  nvbind runtime configure --runtime podman --mode hook   # hooks.d/nvbind.json, stage precreate
  nvbind runtime configure --runtime crio --mode hook     # hooks.d/nvbind.json, stage prestart
  nvbind runtime configure --runtime docker --mode gpus   # nvidia-container-runtime-hook -> nvbind-hook`
