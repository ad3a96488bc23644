package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/hookdoor"
	"github.com/nvbind/nvbind/internal/oci"
	"github.com/nvbind/nvbind/internal/policy"
	"github.com/nvbind/nvbind/internal/reqscan"
)

// nvidiaHookName is the program dockerd's --gpus looks up on its PATH and
// calls as a prestart hook with the argument "prestart".
const nvidiaHookName = "nvidia-container-runtime-hook"

const doorUsage = `  precreate [--config FILE]             Podman hooks.d precreate: spec on stdin, edited spec on stdout
  prestart [--config FILE]              OCI prestart/createRuntime hook: inject into the created container
                                        (also as nvidia-container-runtime-hook prestart, for docker --gpus)`

// doorArgv prepares the command line of a door before the environment is
// dropped: a call as nvidia-container-runtime-hook becomes `prestart` (its
// poststart and poststop calls do nothing), and the config file the caller's
// NVBIND_CONFIG names becomes --config, since the door runs with an empty
// environment.
func doorArgv(argv []string, envConfig string) []string {
	if len(argv) == 0 {
		return argv
	}
	out := append([]string(nil), argv...)
	if filepath.Base(argv[0]) == nvidiaHookName {
		if len(out) < 2 || out[1] != "prestart" {
			return append(out[:1], "noop")
		}
	}
	if len(out) < 2 || (out[1] != "precreate" && out[1] != "prestart") || envConfig == "" {
		return out
	}
	for _, a := range out[2:] {
		if a == "--config" || strings.HasPrefix(a, "--config=") {
			return out
		}
	}
	return append(out, "--config="+envConfig)
}

// needsCleanEnv: every subcommand but precreate re-executes itself with an
// empty environment first. precreate is a filter Podman starts with its own
// (or the hooks.d file's) environment, never the image's, and it starts no
// program; a re-exec would double its cost on every container.
func needsCleanEnv(argv []string) bool {
	return len(argv) < 2 || argv[1] != "precreate"
}

// runDoor runs a door subcommand; ok is false for any other subcommand.
func runDoor(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	sub := args[0]
	if sub == "noop" {
		return 0, true
	}
	if sub != "precreate" && sub != "prestart" {
		return 0, false
	}
	fail := func(c int, format string, a ...any) (int, bool) {
		fmt.Fprintf(stderr, "nvbind-hook: "+format+"\n", a...)
		return c, true
	}
	fs := flag.NewFlagSet(sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", config.DefaultPath, "nvbind config file")
	if err := fs.Parse(args[1:]); err != nil {
		return fail(exitUsage, "%s: %v", sub, err)
	}
	if fs.NArg() > 0 {
		return fail(exitUsage, "%s: unexpected argument %q", sub, fs.Arg(0))
	}
	cfg, cfgErr := config.LoadFile(*path)
	if sub == "precreate" {
		// Podman runs the hook for every container: one without a request
		// gets its spec back (most often before main, by
		// internal/passthrough; here when it left the call to main, e.g.
		// for a spec larger than it reads). Only the config's [policy]
		// annotation-prefixes can make a request of a spec without
		// nvbind's own markers; a config that cannot be read adds none.
		data, err := hookdoor.ReadProposedSpec(stdin)
		if err != nil {
			return fail(exitFailed, "%s: %v", sub, err)
		}
		if !oci.MayRequest(data) && (cfgErr != nil || !reqscan.MayRequestWith(data, policy.AnnotationPrefixes(cfg))) {
			if _, err := stdout.Write(data); err != nil {
				return fail(exitFailed, "%s: %v", sub, err)
			}
			return 0, true
		}
		stdin = bytes.NewReader(data)
	}
	if cfgErr != nil {
		return fail(exitFailed, "%s: %v", sub, cfgErr)
	}
	log := oci.NewLogger(nil, cfg.Runtime.LogFile, cfg.Runtime.LogLevel)
	var err error
	if sub == "precreate" {
		err = hookdoor.Precreate(stdin, stdout, cfg, log)
	} else {
		err = hookdoor.Prestart(stdin, cfg, log)
	}
	if err != nil {
		log.Errorf("%s: %v", sub, err)
		return fail(exitFailed, "%s: %v", sub, err)
	}
	return 0, true
}
