package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/ledger"
	"github.com/nvbind/nvbind/internal/oci"
	"github.com/nvbind/nvbind/internal/policy"
	"github.com/nvbind/nvbind/internal/request"
)

// holdGPUs records the GPUs dec grants in the ledger. Under the ledger's
// lock it first checks exclusive GPUs and the tenant's quota against the
// live grants, and turns dec into a refusal on a conflict (nothing is
// recorded then). The returned undo drops the record, for a create that
// fails after it.
func holdGPUs(args *oci.Args, cfg *config.Config, runtime string, dec *policy.Decision, req *request.Request, log *logrus.Logger) (undo func(), err error) {
	undo = func() {}
	isGPU := func(kind string) bool { return request.IsDefaultKind(kind, cfg.CDI.DefaultKind) }
	if cfg.Ledger.Dir == "" {
		if dec.NeedsLedger() && gpu.AsksForGPU(isGPU, req.Devices) {
			// Fail closed: the rule's quota or exclusivity cannot be checked.
			return undo, fmt.Errorf("policy rule %q sets max-gpus or exclusive, which need the ledger, and ledger.dir is empty", dec.Rule)
		}
		return undo, nil
	}
	granted := gpu.ResolveGranted(cfg.Driver.Root, isGPU, req.Devices)
	if len(granted) == 0 {
		return undo, nil // driver or capability devices only
	}
	root := args.Root
	if root == "" {
		root = ledger.DefaultRoot(runtime)
	}
	e := &ledger.Entry{ID: args.ContainerID, Runtime: runtime, Root: root, Bundle: args.Bundle,
		Tenant: dec.Tenant.Key, Rule: dec.Rule, Profile: req.Profile, Created: time.Now().UTC(),
		PID: os.Getpid()}
	for _, g := range granted {
		e.Devices = append(e.Devices, ledger.Device{Name: g.Name, Index: g.Index, UUID: g.UUID, Parent: g.Parent,
			MIG: g.MIG, Exclusive: dec.Exclusive(g.Index, g.UUID)})
	}
	l := ledger.Open(cfg.Ledger.Dir)
	why, err := l.Claim(e, dec.MaxGPUs)
	if err != nil {
		// A caller that may not write the ledger (rootless Podman runs the
		// runtime as the user) gets its GPUs unrecorded, unless a quota or
		// an exclusive GPU depends on the record.
		if !dec.NeedsLedger() && errors.Is(err, fs.ErrPermission) {
			log.Warnf("%v: container %s not recorded in the GPU ledger", err, e.ID)
			return undo, nil
		}
		return undo, err
	}
	if why != "" {
		dec.Refuse(dec.Rule, why)
		return undo, nil
	}
	return func() { l.Release(e.ID) }, nil
}

// releaseGPUs drops a deleted container's ledger entry: one readlink for
// a container without GPUs, no spec read. It never fails the delete: runc
// must still clean up, and a missed release is reclaimed on the next
// ledger read.
func releaseGPUs(args *oci.Args, cfg *config.Config, runtime string, log *logrus.Logger) {
	if cfg.Ledger.Dir == "" || args.ContainerID == "" {
		return
	}
	l := ledger.Open(cfg.Ledger.Dir)
	if !l.Held(args.ContainerID) {
		return
	}
	root := args.Root
	if root == "" {
		root = ledger.DefaultRoot(runtime)
	}
	if !ledger.WillDelete(root, args.ContainerID, args.Force()) {
		return // runc refuses to delete a running container
	}
	if err := l.Release(args.ContainerID); err != nil {
		log.Warnf("%v", err)
	}
}
