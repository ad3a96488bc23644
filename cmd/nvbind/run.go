package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nvbind/nvbind/internal/engines"
)

// run.go: `nvbind run`, the one command for a GPU container. It builds the
// engine's own `run` command line with the request in the forms nvbind's
// doors read (NVIDIA_VISIBLE_DEVICES, NVBIND_PROFILE, nvbind.io/profile
// annotations) and replaces itself with the engine, so the container's
// output and exit code are the engine's.

func init() { addCommand(newRunCmd) }

type runOptions struct {
	engine, gpus, profile string
	params, env, volumes  []string
	engineArgs            []string
	interactive, tty      bool
	dryRun                bool
}

func newRunCmd(stdout, stderr io.Writer) *cobra.Command {
	var o runOptions
	c := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "run a GPU container with Docker or Podman through nvbind",
		Long: `Runs IMAGE with the GPUs asked for, through the engine nvbind is wired
into (nvbind runtime configure). Without --engine it takes Docker when its
daemon has the nvbind runtime, else Podman when it has. Flags go before
IMAGE; everything after IMAGE is the container's command. The container's
output is streamed and its exit code is nvbind's.`,
		Example: `  nvbind run --gpus all ubuntu nvidia-smi
  nvbind run --engine podman --gpus 0,1 --profile ml --param cache-dir=/var/cache/nvbind/ml pytorch python train.py`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return exitCode(failTo(stderr, 2, "run: want an IMAGE (nvbind run [flags] IMAGE [COMMAND...])"))
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error { return code(runContainer(o, args, stdout, stderr)) },
	}
	f := c.Flags()
	f.SetInterspersed(false) // what follows IMAGE is the container's command
	f.StringVar(&o.engine, "engine", "", "docker or podman (default: the one nvbind is configured with)")
	f.StringVar(&o.gpus, "gpus", "all", "GPUs: all, a count N (the first N), or a list of indices, GPU-/MIG- UUIDs (also device=LIST)")
	f.StringVar(&o.profile, "profile", "", "nvbind workload profile (nvbind profile list)")
	f.StringArrayVar(&o.params, "param", nil, "profile parameter key=value (repeatable)")
	f.StringArrayVarP(&o.env, "env", "e", nil, "environment variable NAME=value for the container (repeatable)")
	f.StringArrayVarP(&o.volumes, "volume", "v", nil, "bind mount SRC:DST[:OPTS] (repeatable)")
	f.StringArrayVar(&o.engineArgs, "engine-arg", nil, "extra argument for the engine's run command (repeatable), e.g. --engine-arg=--shm-size=1g")
	f.BoolVarP(&o.interactive, "interactive", "i", false, "keep stdin open")
	f.BoolVarP(&o.tty, "tty", "t", false, "allocate a terminal")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the engine command and run nothing")
	c.RegisterFlagCompletionFunc("engine", cobra.FixedCompletions([]string{engines.Docker, engines.Podman}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// door is how a request reaches nvbind through one engine.
type door struct {
	engine, binary string
	// runArgs are the engine run flags that select nvbind ("--runtime
	// nvbind"; none for a hook door).
	runArgs []string
	// gpusFlag: the request goes as docker's --gpus, which makes dockerd
	// add the prestart hook nvbind serves (nvbind runtime configure
	// --runtime docker --mode gpus).
	gpusFlag bool
	// annotations: the engine can set OCI annotations (profile parameters).
	annotations bool
	why         string // why annotations are not available
}

// findDoor is replaced by tests.
var findDoor = detectDoor

// execEngine replaces nvbind with the engine; tests replace it.
var execEngine = func(bin string, argv []string) error {
	return syscall.Exec(bin, argv, os.Environ())
}

func runContainer(o runOptions, args []string, stdout, stderr io.Writer) int {
	gpus, err := visibleDevices(o.gpus)
	if err != nil {
		return failTo(stderr, 2, "run: --gpus %q: %v", o.gpus, err)
	}
	if o.engine != "" && o.engine != engines.Docker && o.engine != engines.Podman {
		return failTo(stderr, 2, "run: --engine %q: want docker or podman", o.engine)
	}
	d, err := findDoor(o.engine)
	if err != nil {
		return failTo(stderr, 1, "run: %v", err)
	}
	argv := []string{d.binary, "run", "--rm"}
	argv = append(argv, d.runArgs...)
	if o.interactive {
		argv = append(argv, "--interactive")
	}
	if o.tty {
		argv = append(argv, "--tty")
	}
	if d.gpusFlag {
		argv = append(argv, "--gpus", dockerGpus(gpus))
	} else {
		argv = append(argv, "--env", "NVIDIA_VISIBLE_DEVICES="+gpus)
	}
	if o.profile != "" {
		argv = append(argv, "--env", "NVBIND_PROFILE="+o.profile)
	}
	if len(o.params) > 0 {
		if o.profile == "" {
			return failTo(stderr, 2, "run: --param needs --profile")
		}
		if !d.annotations {
			return failTo(stderr, 1, "run: %s cannot pass profile parameters: %s; put them in [profiles.%s] of the config file, or use podman", d.engine, d.why, o.profile)
		}
		argv = append(argv, "--annotation", "nvbind.io/profile="+o.profile)
		for _, p := range o.params {
			k, v, ok := strings.Cut(p, "=")
			if !ok || k == "" {
				return failTo(stderr, 2, "run: --param %q: want key=value", p)
			}
			argv = append(argv, "--annotation", "nvbind.io/profile."+k+"="+v)
		}
	}
	for _, e := range o.env {
		argv = append(argv, "--env", e)
	}
	for _, v := range o.volumes {
		argv = append(argv, "--volume", v)
	}
	argv = append(argv, o.engineArgs...)
	argv = append(argv, args...)
	if o.dryRun {
		fmt.Fprintln(stdout, shellQuote(argv))
		return 0
	}
	if err := execEngine(d.binary, argv); err != nil {
		return failTo(stderr, 1, "run: %s: %v", d.binary, err)
	}
	return 0
}

// visibleDevices turns --gpus into NVIDIA_VISIBLE_DEVICES: all, a count
// (the first N GPUs, as docker --gpus N does) or a list passed on, which
// the runtime parses strictly.
func visibleDevices(v string) (string, error) {
	v = strings.Trim(strings.TrimSpace(v), `"'`)
	if list, ok := strings.CutPrefix(v, "device="); ok {
		// docker's form for a list: --gpus '"device=0,1"'
		return deviceList(list)
	}
	switch {
	case v == "" || v == "all":
		return "all", nil
	case v == "none":
		return "none", nil
	}
	if n, err := strconv.Atoi(v); err == nil && !strings.Contains(v, ",") {
		if n < 1 || n > 256 {
			return "", fmt.Errorf("a count must be 1 to 256 (for GPU %d alone: device=%d)", n, n)
		}
		ids := make([]string, n)
		for i := range ids {
			ids[i] = strconv.Itoa(i)
		}
		return strings.Join(ids, ","), nil
	}
	return deviceList(v)
}

// deviceList checks a comma-separated list of GPU ids.
func deviceList(v string) (string, error) {
	for _, id := range strings.Split(v, ",") {
		if id == "" || strings.ContainsAny(id, " \t\n=/") {
			return "", fmt.Errorf("%q is not a GPU index, UUID or MIG id", id)
		}
	}
	return v, nil
}

// dockerGpus is NVIDIA_VISIBLE_DEVICES as docker's --gpus value: "all",
// or a device list (quoted: docker reads the value as CSV).
func dockerGpus(visible string) string {
	if visible == "all" {
		return "all"
	}
	return `"device=` + visible + `"`
}

// hookModes is what nvbind's hook doors look like on this host; tests
// replace it.
var hookModes = func() engines.HookMode { return engines.DetectHookModes(engines.HookDirs) }

// detectDoor finds the engine and how nvbind is wired into it.
func detectDoor(want string) (*door, error) {
	var reasons []string
	for _, name := range []string{engines.Docker, engines.Podman} {
		if want != "" && name != want {
			continue
		}
		var d *door
		var err error
		if name == engines.Docker {
			d, err = dockerDoor()
		} else {
			d, err = podmanDoor()
		}
		if err == nil {
			return d, nil
		}
		reasons = append(reasons, err.Error())
	}
	return nil, fmt.Errorf("%s", strings.Join(reasons, "; "))
}

// dockerDoor asks the daemon itself which runtimes it has: daemon.json
// edits take effect only after a reload, and --add-runtime is not in it.
func dockerDoor() (*door, error) {
	bin, err := exec.LookPath("docker")
	if err != nil {
		return nil, fmt.Errorf("docker: not installed")
	}
	out, err := exec.Command(bin, "info", "--format", "{{json .Runtimes}}").Output()
	if err != nil {
		return nil, fmt.Errorf("docker: daemon not reachable (%v)", err)
	}
	var runtimes map[string]json.RawMessage
	if err := json.Unmarshal(out, &runtimes); err != nil {
		return nil, fmt.Errorf("docker: cannot read its runtimes: %v", err)
	}
	d := &door{engine: engines.Docker, binary: bin, runArgs: []string{"--runtime", engines.RuntimeName}}
	if _, ok := runtimes[engines.RuntimeName]; !ok {
		// dockerd serves --gpus through nvidia-container-runtime-hook on
		// its PATH; nvbind's is a link to nvbind-hook.
		if !hookModes().GpusIsNvbind {
			return nil, fmt.Errorf("docker: the daemon has no %q runtime and --gpus is not served by nvbind (run 'sudo nvbind runtime configure --runtime docker' and reload docker, or --mode gpus and restart it)", engines.RuntimeName)
		}
		d.runArgs, d.gpusFlag = nil, true
	}
	// docker run --annotation came with Docker 24.
	v, _ := exec.Command(bin, "version", "--format", "{{.Client.Version}}").Output()
	if major, _, _ := strings.Cut(strings.TrimSpace(string(v)), "."); atoiOr(major, 0) >= 24 {
		d.annotations = true
	} else {
		d.why = "docker " + strings.TrimSpace(string(v)) + " has no --annotation (Docker 24 or later)"
	}
	return d, nil
}

// podmanDoor reads containers.conf (CONTAINERS_CONF, else the system
// files) for the nvbind runtime.
func podmanDoor() (*door, error) {
	bin, err := exec.LookPath("podman")
	if err != nil {
		return nil, fmt.Errorf("podman: not installed")
	}
	for _, e := range engines.Detect() {
		if e.Name != engines.Podman {
			continue
		}
		if e.Error != "" {
			return nil, fmt.Errorf("podman: %s", e.Error)
		}
		if e.Registered {
			return &door{engine: engines.Podman, binary: bin, runArgs: []string{"--runtime", engines.RuntimeName}, annotations: true}, nil
		}
		// The precreate hook sees every container: Podman's own runtime.
		if hookModes().HooksFile != "" {
			return &door{engine: engines.Podman, binary: bin, annotations: true}, nil
		}
		return nil, fmt.Errorf("podman: no %q runtime in %s and no nvbind hooks.d file (run 'sudo nvbind runtime configure --runtime podman', with --mode hook for the hook)", engines.RuntimeName, e.ConfigPath)
	}
	return nil, fmt.Errorf("podman: not found by engine detection")
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

// shellQuote prints argv so that a shell reads it back the same.
func shellQuote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@+%", r))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
