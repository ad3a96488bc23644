// Command nvbind-hook is the OCI createContainer hook that nvbind's CDI
// specs call: it reads the container's OCI state on stdin, finds the rootfs
// from the bundle's config.json and changes it, resolving every path inside
// it:
//
//	nvbind-hook update-ldcache --folder DIR [--folder DIR ...]
//	nvbind-hook create-symlinks --link TARGET::LINK [--link ...]
//	nvbind-hook chmod --mode MODE --path PATH [--path ...]
//	nvbind-hook batch SUBCOMMAND [flags] [--and SUBCOMMAND [flags] ...]
//
// It is also nvbind's two hook doors (doors.go), for engines that keep
// their own runtime:
//
//	nvbind-hook precreate [--config FILE]   Podman hooks.d: spec on stdin, edited spec on stdout
//	nvbind-hook prestart [--config FILE]    OCI prestart/createRuntime hook: inject into the created container
//	nvidia-container-runtime-hook prestart  the same, as dockerd's --gpus calls it
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/nvbind/nvbind/cmd/nvbind-hook/internal/passthrough"
	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/hook"
)

const usage = `usage: nvbind-hook SUBCOMMAND [flags] < OCI-state.json
  update-ldcache --folder DIR ...       add the libraries in DIR to the container's ld.so.cache
  create-symlinks --link TARGET::LINK ... make symlinks in the container
  chmod --mode MODE --path PATH ...      set permissions in the container
  batch SUBCOMMAND ... [--and SUBCOMMAND ...]  several of the above, in order, in one process`

// Exit codes: 1 the hook failed, 2 it was called wrongly.
const (
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	// A hook lives a few milliseconds on the create's critical path and
	// allocates little: collecting garbage would only cost time.
	debug.SetGCPercent(-1)
	os.Args = doorArgv(os.Args, os.Getenv(config.EnvPath))
	if needsCleanEnv(os.Args) {
		if err := hook.EnsureCleanEnv(); err != nil {
			fmt.Fprintf(os.Stderr, "nvbind-hook: %v\n", err)
			os.Exit(exitFailed)
		}
	}
	// A precreate spec without a request never gets here: the passthrough
	// package's init answered it. Stdin is what that init read, if any.
	if code, ok := runDoor(os.Args[1:], passthrough.Stdin(), os.Stdout, os.Stderr); ok {
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stderr))
}

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func run(args []string, stdin io.Reader, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "nvbind-hook: "+format+"\n", a...)
		return code
	}
	if len(args) == 0 {
		return fail(exitUsage, "no subcommand (want update-ldcache, create-symlinks, chmod or batch; --help for usage)")
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprintln(stderr, usage+"\n"+doorUsage)
		return 0
	}
	// batch runs several subcommands in one process, against one open
	// rootfs: nvbind-runtime merges a container's nvbind-hook hooks into
	// one, as each hook process costs a whole process start.
	var steps [][]string
	if args[0] == "batch" {
		for _, a := range args[1:] {
			if a == batchSep || len(steps) == 0 {
				steps = append(steps, nil)
				if a == batchSep {
					continue
				}
			}
			steps[len(steps)-1] = append(steps[len(steps)-1], a)
		}
		if len(steps) == 0 {
			return fail(exitUsage, "batch: no subcommand")
		}
	} else {
		steps = [][]string{args}
	}
	// Check every argument of every step before touching the rootfs.
	type step struct {
		sub string
		op  func(h *hook.Hook) error
	}
	var ops []step
	for _, st := range steps {
		if len(st) == 0 {
			return fail(exitUsage, "batch: empty step")
		}
		op, code, err := parseStep(st[0], st[1:])
		if code == exitHelp {
			fmt.Fprintln(stderr, usage)
			return 0
		}
		if err != nil {
			return fail(code, "%v", err)
		}
		ops = append(ops, step{st[0], op})
	}
	root, err := hook.Open(stdin)
	if err != nil {
		return fail(exitFailed, "%s: %v", args[0], err)
	}
	defer root.Close()
	h := &hook.Hook{Root: root, Warn: stderr}
	for _, st := range ops {
		if err := st.op(h); err != nil {
			return fail(exitFailed, "%s: %v", st.sub, err)
		}
	}
	return 0
}

// batchSep separates the steps of `nvbind-hook batch`. No valid argument
// of a step can be it: folders and paths are absolute, links hold "::".
const batchSep = "--and"

// exitHelp is parseStep's code for a --help flag.
const exitHelp = -1

// parseStep checks one subcommand's arguments and returns what it does.
func parseStep(sub string, args []string) (func(h *hook.Hook) error, int, error) {
	usageErr := func(format string, a ...any) (func(h *hook.Hook) error, int, error) {
		return nil, exitUsage, fmt.Errorf(sub+": "+format, a...)
	}
	fs := flag.NewFlagSet(sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var folders, links, paths list
	var mode string
	switch sub {
	case "update-ldcache":
		fs.Var(&folders, "folder", "library folder in the container (repeatable)")
	case "create-symlinks":
		fs.Var(&links, "link", "TARGET::LINK (repeatable)")
	case "chmod":
		fs.StringVar(&mode, "mode", "", "octal mode")
		fs.Var(&paths, "path", "path in the container (repeatable)")
	default:
		return nil, exitUsage, fmt.Errorf("unknown subcommand %q (want update-ldcache, create-symlinks, chmod or batch)", sub)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitHelp, nil
		}
		return usageErr("%v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	switch sub {
	case "update-ldcache":
		if len(folders) == 0 {
			return usageErr("no --folder given")
		}
		if err := checkPaths(folders); err != nil {
			return usageErr("--folder %v", err)
		}
		return func(h *hook.Hook) error { return h.UpdateLDCache(folders) }, 0, nil
	case "create-symlinks":
		if len(links) == 0 {
			return usageErr("no --link given")
		}
		parsed := make([]hook.Link, 0, len(links))
		for _, s := range links {
			l, err := hook.ParseLink(s)
			if err != nil {
				return usageErr("%v", err)
			}
			parsed = append(parsed, l)
		}
		return func(h *hook.Hook) error { return h.CreateSymlinks(parsed) }, 0, nil
	default: // chmod
		m, err := hook.ParseMode(mode)
		if err != nil {
			return usageErr("%v", err)
		}
		if len(paths) == 0 {
			return usageErr("no --path given")
		}
		if err := checkPaths(paths); err != nil {
			return usageErr("--path %v", err)
		}
		return func(h *hook.Hook) error { return h.Chmod(m, paths) }, 0, nil
	}
}

// checkPaths checks that every path is an absolute container path.
func checkPaths(paths []string) error {
	for _, p := range paths {
		if _, err := hook.ContainerPath(p); err != nil {
			return err
		}
	}
	return nil
}
