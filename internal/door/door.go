// Package door is the create path that nvbind's three doors share:
// nvbind-runtime create/run (config.json rewritten in the bundle),
// nvbind-hook precreate (Podman's spec on stdin, edited spec on stdout) and
// nvbind-hook prestart (edits applied into a created container). Each door
// hands Edit the config.json it has and does only its own I/O with the
// result, so a container asking for the same thing gets the same devices,
// files and env whichever door it came through.
package door

import (
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/inject"
	"github.com/nvbind/nvbind/internal/oci"
	"github.com/nvbind/nvbind/internal/policy"
	"github.com/nvbind/nvbind/internal/profiles"
	"github.com/nvbind/nvbind/internal/reqscan"
	"github.com/nvbind/nvbind/internal/request"
)

// Kind names the door a container came through (for logs, and for the
// policy step's idea of who is asking).
type Kind string

const (
	Runtime   Kind = "runtime"
	Precreate Kind = "precreate"
	Prestart  Kind = "prestart"
)

// Call is one container passing through a door.
type Call struct {
	Door Kind
	// ID is the container's id where the door knows it ("" in precreate).
	ID string
	// Bundle is the container's bundle where the door knows it (for the
	// audit trail).
	Bundle string
	// Spec is the config.json as the door read it; Source says where from
	// ("bundle /run/..."), to name it in a decoding error.
	Spec   []byte
	Source string
	// Hold claims the GPUs a decision grants in the GPU ledger, checking
	// quotas and exclusive GPUs under its lock; it may turn the decision
	// into a refusal. undo releases the claim. nil for a door that cannot
	// keep a ledger entry: a rule that needs one is then refused.
	Hold func(dec *policy.Decision, req *request.Request) (undo func(), err error)
}

// Result is a container's edited spec.
type Result struct {
	Request *request.Request
	// Doc is the spec with the edits applied; Doc.Marshal() encodes it.
	Doc *oci.Document
	// Release gives back what Hold claimed, for a door whose own step
	// after Edit fails.
	Release func()
}

// Edit is the create path: 1. a cheap look for a request, 2. decode the
// spec, 3. read the request, 4. ask the policy (narrow or refuse), 5. apply
// the CDI and profile edits, 6. audit the decision. It returns nil, nil
// when the container asks for no GPU: the door then leaves the spec
// exactly as it was. A refusal is audited and returned as the error.
func Edit(c Call, cfg *config.Config, log *logrus.Logger) (_ *Result, err error) {
	if !reqscan.MayRequestWith(c.Spec, cfg.AnnotationPrefixes()) {
		log.Debugf("%s: container %s: no GPU request", c.Door, c.ID)
		return nil, nil
	}
	doc, err := oci.ParseDocument(c.Spec)
	if err != nil {
		if c.Source != "" {
			err = fmt.Errorf("%s: %w", c.Source, err)
		}
		return nil, err
	}
	// A malformed policy fails every GPU create (closed, not open).
	pol, err := policy.Load(cfg)
	if err != nil {
		return nil, err
	}
	req, err := request.ParseWith(policy.RequestInput(doc.Spec), pol.RequestOptions())
	if err != nil {
		return nil, err
	}
	if req == nil {
		log.Debugf("%s: container %s: no GPU request", c.Door, c.ID)
		return nil, nil
	}
	if len(req.Ignored) > 0 {
		log.Infof("%s: container %s: %s ignored (%s): the %s request wins", c.Door, c.ID,
			request.EnvVisibleDevices, strings.Join(req.Ignored, ","), req.Source)
	}
	dec, err := pol.Decide(policy.Identify(doc.Spec, c.Spec), req, policy.CatalogFacts(func() (*profiles.Catalog, error) {
		return profiles.LoadCatalog(cfg)
	}))
	if err != nil {
		return nil, err
	}
	trail, err := pol.OpenTrail(log.Warnf)
	if err != nil {
		return nil, err
	}
	defer trail.Close()
	audited := policy.Container{ID: c.ID, Bundle: c.Bundle, DriverRoot: cfg.Driver.Root, Before: c.Spec}
	release := func() {}
	switch {
	case dec.Err() != nil:
	case c.Hold != nil:
		if release, err = c.Hold(dec, req); err != nil {
			return nil, err
		}
		// A create that fails from here on holds nothing.
		defer func() {
			if err != nil {
				release()
			}
		}()
	case dec.NeedsLedger():
		dec.Refuse(dec.Rule, fmt.Sprintf("max-gpus and exclusive GPUs are kept in the GPU ledger, which only nvbind-runtime writes; the %s door cannot hold GPUs", c.Door))
	}
	if refusal := dec.Err(); refusal != nil {
		if err := trail.Record(dec, audited); err != nil {
			return nil, err
		}
		return nil, refusal
	}
	if err := pol.PrepareCaches(dec, req); err != nil {
		return nil, err
	}
	if err := inject.Apply(doc.Spec, req, cfg, log); err != nil {
		return nil, err
	}
	if trail.Active() {
		if audited.After, err = doc.Marshal(); err != nil {
			return nil, err
		}
	}
	if err := trail.Record(dec, audited); err != nil {
		return nil, err
	}
	log.Debugf("%s: container %s: injected %s (capabilities %s; policy rule %s, %s)", c.Door, c.ID,
		strings.Join(req.Devices, ","), strings.Join(req.Capabilities, ","), dec.Rule, dec.Outcome)
	return &Result{Request: req, Doc: doc, Release: release}, nil
}
