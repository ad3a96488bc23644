// Command nvbind-runtime is a runc-compatible OCI runtime shim. On create
// and run it adds the GPUs a container asks for to the bundle's spec; every
// other call goes to the low-level runtime untouched. It replaces itself
// with that runtime, so pid, fds, environment and exit status are runc's.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/inject"
	"github.com/nvbind/nvbind/internal/oci"
	"github.com/nvbind/nvbind/internal/policy"
	"github.com/nvbind/nvbind/internal/profiles"
	"github.com/nvbind/nvbind/internal/request"
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
		if err := prepare(args, cfg, runtime, log); err != nil {
			return fatal(log, err)
		}
	}
	if args.Verb == "delete" {
		releaseGPUs(args, cfg, runtime, log)
	}
	return fatal(log, oci.Exec(runtime, argv))
}

// prepare is the create path: 2. load the spec, 3. read the request,
// 4. ask the policy, then the ledger (quotas, exclusive GPUs), 5. apply
// the edits, 6. audit the decision and write the spec back atomically.
func prepare(args *oci.Args, cfg *config.Config, runtime string, log *logrus.Logger) (err error) {
	data, err := oci.ReadSpec(args.Bundle)
	if err != nil {
		return err
	}
	if !oci.MayRequest(data) && !request.MayRequestExtra(data, policy.AnnotationPrefixes(cfg)) {
		log.Debugf("container %s: no GPU request", args.ContainerID)
		return nil
	}
	doc, err := oci.ParseDocument(data)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", args.Bundle, err)
	}
	// A malformed policy fails every GPU create (closed, not open).
	pol, err := policy.Load(cfg)
	if err != nil {
		return err
	}
	req, err := request.ParseWith(policy.RequestInput(doc.Spec), pol.RequestOptions())
	if err != nil {
		return err
	}
	if req == nil {
		log.Debugf("container %s: no GPU request", args.ContainerID)
		return nil
	}
	if len(req.Ignored) > 0 {
		log.Infof("container %s: %s ignored (%s): the %s request wins", args.ContainerID,
			request.EnvVisibleDevices, strings.Join(req.Ignored, ","), req.Source)
	}
	dec, err := pol.Decide(policy.Identify(doc.Spec, data), req, policy.CatalogFacts(func() (*profiles.Catalog, error) {
		return profiles.LoadCatalog(cfg)
	}))
	if err != nil {
		return err
	}
	trail, err := pol.OpenTrail(log.Warnf)
	if err != nil {
		return err
	}
	defer trail.Close()
	c := policy.Container{ID: args.ContainerID, Bundle: args.Bundle, DriverRoot: cfg.Driver.Root, Before: data}
	if dec.Err() == nil {
		var undo func()
		if undo, err = holdGPUs(args, cfg, runtime, dec, req, log); err != nil {
			return err
		}
		// A create that fails from here on holds nothing.
		defer func() {
			if err != nil {
				undo()
			}
		}()
	}
	if refusal := dec.Err(); refusal != nil {
		if err := trail.Record(dec, c); err != nil {
			return err
		}
		return refusal
	}
	if err := pol.PrepareCaches(dec, req); err != nil {
		return err
	}
	if err := inject.Apply(doc.Spec, req, cfg, log); err != nil {
		return err
	}
	if trail.Active() {
		if c.After, err = doc.Marshal(); err != nil {
			return err
		}
	}
	if err := trail.Record(dec, c); err != nil {
		return err
	}
	if err := oci.WriteDocument(args.Bundle, doc); err != nil {
		return err
	}
	log.Debugf("container %s: injected %s (capabilities %s; policy rule %s, %s)", args.ContainerID,
		strings.Join(req.Devices, ","), strings.Join(req.Capabilities, ","), dec.Rule, dec.Outcome)
	return nil
}

// fatal reports err as one line on stderr and as an error in runc's log,
// where containerd's shim and Podman look for the runtime's failure.
func fatal(log *logrus.Logger, err error) int {
	log.Error(err.Error())
	fmt.Fprintf(os.Stderr, "nvbind-runtime: %v\n", err)
	return 1
}
