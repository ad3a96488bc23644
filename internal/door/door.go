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

	"github.com/sirupsen/logrus"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/inject"
	"github.com/nvbind/nvbind/internal/oci"
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
	// Spec is the config.json as the door read it; Source says where from
	// ("bundle /run/..."), to name it in a decoding error.
	Spec   []byte
	Source string
}

// Result is a container's edited spec.
type Result struct {
	Request *request.Request
	// Doc is the spec with the edits applied; Doc.Marshal() encodes it.
	Doc *oci.Document
}

// Edit is the create path: 1. a cheap look for a request, 2. decode the
// spec, 3. read the request, 4. decide (the policy step goes here), 5. apply
// the CDI and profile edits. It returns nil, nil when the container asks
// for no GPU: the door then leaves the spec exactly as it was.
func Edit(c Call, cfg *config.Config, log *logrus.Logger) (*Result, error) {
	if !oci.MayRequest(c.Spec) {
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
	var env []string
	if doc.Spec.Process != nil {
		env = doc.Spec.Process.Env
	}
	req, err := request.Parse(env, doc.Spec.Annotations, cfg.CDI.DefaultKind)
	if err != nil {
		return nil, err
	}
	if req == nil {
		log.Debugf("%s: container %s: no GPU request", c.Door, c.ID)
		return nil, nil
	}
	if err := decide(c, req, cfg); err != nil {
		return nil, err
	}
	if err := inject.Apply(doc.Spec, req, cfg, log); err != nil {
		return nil, err
	}
	log.Debugf("%s: container %s: injected %v (capabilities %v)", c.Door, c.ID, req.Devices, req.Capabilities)
	return &Result{Request: req, Doc: doc}, nil
}

// decide is where the policy step narrows or refuses a request, the same
// for every door. Until a policy package exists every request is granted.
func decide(c Call, req *request.Request, cfg *config.Config) error {
	if req == nil {
		return fmt.Errorf("%s: no request to decide on", c.Door)
	}
	return nil
}
