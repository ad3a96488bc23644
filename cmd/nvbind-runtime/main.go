// Command nvbind-runtime is a runc-compatible OCI runtime shim. On create
// and run it adds the GPUs a container asks for to the bundle's spec; every
// other call goes to the low-level runtime untouched. It replaces itself
// with that runtime, so pid, fds, environment and exit status are runc's.
package main

import (
	"fmt"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/door"
	"github.com/nvbind/nvbind/internal/oci"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(argv []string) int {
	cwd, _ := os.Getwd()
	// 1. argv: a command line nvbind cannot parse is runc's to reject.
	args, argErr := oci.ParseArgs(argv, cwd)
	if argErr != nil {
		args = &oci.Args{Argv: argv}
	}
	cfg, cfgErr := config.Load()
	if cfgErr != nil && args.Intercepts() {
		return fatal(oci.NewLogger(args, "", "error"), cfgErr)
	}
	if cfgErr != nil {
		// Let state/kill/delete still reach runc so containers can be
		// cleaned up; the broken config is reported on the next create.
		cfg = config.Default()
	}
	level := cfg.Runtime.LogLevel
	if args.Debug {
		level = "debug"
	}
	log := oci.NewLogger(args, cfg.Runtime.LogFile, level)
	if cfgErr != nil {
		log.Warnf("%v; using built-in defaults", cfgErr)
	}
	runtime, err := oci.FindRuntime(cfg.Runtime.Runtimes)
	if err != nil {
		return fatal(log, err)
	}
	if args.Intercepts() {
		if err := prepare(args, cfg, log); err != nil {
			return fatal(log, err)
		}
	}
	return fatal(log, oci.Exec(runtime, argv))
}

// prepare is the create path: 2. load the spec, 3.-6. the request, the
// policy's decision, the edits and the audit line (internal/door, shared
// with nvbind-hook's doors), 7. write the spec back atomically.
func prepare(args *oci.Args, cfg *config.Config, log *logrus.Logger) error {
	data, err := oci.ReadSpec(args.Bundle)
	if err != nil {
		return err
	}
	res, err := door.Edit(door.Call{Door: door.Runtime, ID: args.ContainerID, Bundle: args.Bundle, Spec: data, Source: "bundle " + args.Bundle}, cfg, log)
	if err != nil || res == nil {
		return err
	}
	return oci.WriteDocument(args.Bundle, res.Doc)
}

// fatal reports err as one line on stderr and as an error in runc's log,
// where containerd's shim and Podman look for the runtime's failure.
func fatal(log *logrus.Logger, err error) int {
	log.Error(err.Error())
	fmt.Fprintf(os.Stderr, "nvbind-runtime: %v\n", err)
	return 1
}
