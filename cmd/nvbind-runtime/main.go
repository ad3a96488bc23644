// Command nvbind-runtime is a runc-compatible OCI runtime shim. On create
// and run it adds the GPUs a container asks for to the bundle's spec; every
// other call goes to the low-level runtime untouched. It replaces itself
// with that runtime, so pid, fds, environment and exit status are runc's.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/nvbind/nvbind/cmd/nvbind-runtime/internal/passthrough"
	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/door"
	"github.com/nvbind/nvbind/internal/hookfold"
	"github.com/nvbind/nvbind/internal/oci"
	"github.com/nvbind/nvbind/internal/policy"
	"github.com/nvbind/nvbind/internal/request"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(argv []string) int {
	// 1. config.toml, the runtime, argv as that runtime parses it and the
	// spec of a create: made during package init (internal/passthrough),
	// which has already handed a create without a request to the runtime
	// when that needs no log line.
	p := passthrough.Started(argv, passthrough.Deps{Parse: config.Parse, LookPath: exec.LookPath})
	cfg, runtime, args := p.Cfg, p.Runtime, p.Args
	log := oci.NewLogger(args, cfg.Runtime.LogFile, p.Level)
	if p.ArgErr != nil && (args.Intercepts() || oci.MentionsIntercept(argv)) {
		// Guessing could edit another bundle's spec, or none, and run the
		// container without its GPUs: refuse.
		return fatal(log, fmt.Errorf("cannot parse the command line exactly: %w", p.ArgErr))
	}
	if p.CfgErr != nil && args.Intercepts() {
		return fatal(log, p.CfgErr)
	}
	if p.CfgErr != nil {
		log.Warnf("%v; using built-in defaults", p.CfgErr)
	}
	if p.RtErr != nil {
		return fatal(log, p.RtErr)
	}
	if args.Intercepts() {
		if err := prepare(p, log); err != nil {
			return fatal(log, err)
		}
		if err := oci.RecordRuntime(args, runtime); err != nil {
			log.Warnf("%v", err)
		}
	} else if args.Verb == "delete" {
		oci.ForgetRuntime(args)
	}
	if args.Verb == "delete" {
		releaseGPUs(args, cfg, runtime, log)
	}
	return fatal(log, oci.Exec(runtime, argv))
}

// prepare is the create path: 2. the spec passthrough.Begin read, 3.-6.
// the request, the policy's decision with the GPU ledger's quotas and
// exclusive GPUs (holdGPUs), the edits and the audit line (internal/door,
// shared with nvbind-hook's doors), 7. write the spec back atomically.
func prepare(p *passthrough.Plan, log *logrus.Logger) error {
	args, cfg := p.Args, p.Cfg
	if p.NoRequest && p.Spec == nil {
		// Too large to edit, but only a GPU request needs editing.
		log.Debugf("container %s: no GPU request", args.ContainerID)
		return nil
	}
	if p.SpecErr != nil {
		return p.SpecErr
	}
	hold := func(dec *policy.Decision, req *request.Request) (func(), error) {
		return holdGPUs(args, cfg, p.Runtime, dec, req, log)
	}
	res, err := door.Edit(door.Call{Door: door.Runtime, ID: args.ContainerID, Bundle: args.Bundle,
		Spec: p.Spec, Source: args.Config, Hold: hold}, cfg, log)
	if err != nil || res == nil {
		return err
	}
	linkDir := ""
	if cfg.Runtime.StateDir != "" {
		linkDir = filepath.Join(cfg.Runtime.StateDir, "links")
	}
	hookfold.DropLinkMounts(res.Doc.Spec, linkDir)
	if cfg.Hook.InRuntime {
		foldHook(res.Doc, args, cfg, p.Runtime, linkDir, log)
	}
	if err := oci.WriteDocument(args.Config, res.Doc); err != nil {
		res.Release()
		return err
	}
	return nil
}

// foldHook does the work of nvbind's createContainer hook now, before runc
// starts, and takes the hook out of the spec (internal/hookfold): one
// process start less on the create's critical path. A container it cannot
// do exactly keeps its hook.
func foldHook(doc *oci.Document, args *oci.Args, cfg *config.Config, runtime, linkDir string, log *logrus.Logger) {
	if !hookfold.Runs(doc.Spec, cfg.HookPath()) {
		return // no nvbind hook to fold
	}
	isRunc := filepath.Base(runtime) == "runc"
	if !isRunc {
		log.Debugf("container %s: hook kept: the low-level runtime is not runc", args.ContainerID)
		return
	}
	c, err := hookfold.Read(doc, args.Bundle)
	if err != nil {
		log.Debugf("container %s: hook kept: %v", args.ContainerID, err)
		return
	}
	folded, why := hookfold.Fold(doc.Spec, c, hookfold.Options{HookPath: cfg.HookPath(),
		Runc: isRunc, LinkDir: linkDir, Warn: warnWriter{log}})
	switch {
	case folded:
		log.Debugf("container %s: hook work done before %s", args.ContainerID, filepath.Base(runtime))
	case why != "":
		log.Debugf("container %s: hook kept: %s", args.ContainerID, why)
	}
}

// warnWriter logs each line written to it as a warning.
type warnWriter struct{ log *logrus.Logger }

func (w warnWriter) Write(p []byte) (int, error) {
	w.log.Warn(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// fatal reports err as one line on stderr and as an error in runc's log,
// where containerd's shim and Podman look for the runtime's failure.
func fatal(log *logrus.Logger, err error) int {
	log.Error(err.Error())
	fmt.Fprintf(os.Stderr, "nvbind-runtime: %v\n", err)
	return 1
}
