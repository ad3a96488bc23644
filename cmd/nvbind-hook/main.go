// Command nvbind-hook is the OCI createContainer hook that nvbind's CDI
// specs call: it reads the container's OCI state on stdin, finds the rootfs
// from the bundle's config.json and changes it, resolving every path inside
// it:
//
//	nvbind-hook update-ldcache --folder DIR [--folder DIR ...]
//	nvbind-hook create-symlinks --link TARGET::LINK [--link ...]
//	nvbind-hook chmod --mode MODE --path PATH [--path ...]
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
	"strings"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/hook"
)

const usage = `usage: nvbind-hook SUBCOMMAND [flags] < OCI-state.json
  update-ldcache --folder DIR ...       add the libraries in DIR to the container's ld.so.cache
  create-symlinks --link TARGET::LINK ... make symlinks in the container
  chmod --mode MODE --path PATH ...      set permissions in the container`

// Exit codes: 1 the hook failed, 2 it was called wrongly.
const (
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	os.Args = doorArgv(os.Args, os.Getenv(config.EnvPath))
	if needsCleanEnv(os.Args) {
		if err := hook.EnsureCleanEnv(); err != nil {
			fmt.Fprintf(os.Stderr, "nvbind-hook: %v\n", err)
			os.Exit(exitFailed)
		}
	}
	if code, ok := runDoor(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); ok {
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
		return fail(exitUsage, "no subcommand (want update-ldcache, create-symlinks or chmod; --help for usage)")
	}
	sub := args[0]
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
	case "-h", "--help", "help":
		fmt.Fprintln(stderr, usage+"\n"+doorUsage)
		return 0
	default:
		return fail(exitUsage, "unknown subcommand %q (want update-ldcache, create-symlinks or chmod)", sub)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, usage)
			return 0
		}
		return fail(exitUsage, "%s: %v", sub, err)
	}
	if fs.NArg() > 0 {
		return fail(exitUsage, "%s: unexpected argument %q", sub, fs.Arg(0))
	}

	// Check every argument before touching the rootfs.
	var op func(h *hook.Hook) error
	switch sub {
	case "update-ldcache":
		if len(folders) == 0 {
			return fail(exitUsage, "%s: no --folder given", sub)
		}
		if err := checkPaths(folders); err != nil {
			return fail(exitUsage, "%s: --folder %v", sub, err)
		}
		op = func(h *hook.Hook) error { return h.UpdateLDCache(folders) }
	case "create-symlinks":
		if len(links) == 0 {
			return fail(exitUsage, "%s: no --link given", sub)
		}
		parsed := make([]hook.Link, 0, len(links))
		for _, s := range links {
			l, err := hook.ParseLink(s)
			if err != nil {
				return fail(exitUsage, "%s: %v", sub, err)
			}
			parsed = append(parsed, l)
		}
		op = func(h *hook.Hook) error { return h.CreateSymlinks(parsed) }
	case "chmod":
		m, err := hook.ParseMode(mode)
		if err != nil {
			return fail(exitUsage, "%s: %v", sub, err)
		}
		if len(paths) == 0 {
			return fail(exitUsage, "%s: no --path given", sub)
		}
		if err := checkPaths(paths); err != nil {
			return fail(exitUsage, "%s: --path %v", sub, err)
		}
		op = func(h *hook.Hook) error { return h.Chmod(m, paths) }
	}

	root, err := hook.Open(stdin)
	if err != nil {
		return fail(exitFailed, "%s: %v", sub, err)
	}
	defer root.Close()
	if err := op(&hook.Hook{Root: root, Warn: stderr}); err != nil {
		return fail(exitFailed, "%s: %v", sub, err)
	}
	return 0
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
