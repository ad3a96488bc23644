package policy

import (
	"fmt"

	"github.com/nvbind/nvbind/internal/audit"
	"github.com/nvbind/nvbind/internal/gpu"
)

// Trail is one create's audit: the log opened (and locked) before anything
// changes, so that under a preset that requires the audit an unwritable
// log fails create before config.json is touched.
type Trail struct {
	p   *Policy
	log *audit.Log
	// Warn reports an audit failure the preset tolerates.
	warn func(format string, args ...any)
}

// OpenTrail opens the audit log. With the policy off it records nothing;
// when the log cannot be opened it fails if the preset requires the audit
// and warns otherwise.
func (p *Policy) OpenTrail(warn func(format string, args ...any)) (*Trail, error) {
	t := &Trail{p: p, warn: warn}
	if p.Off {
		return t, nil
	}
	l, err := audit.Open(p.AuditLog, audit.Options{MaxSize: p.AuditMaxSize, Keep: p.AuditKeep})
	if err != nil {
		if p.AuditRequired {
			return nil, fmt.Errorf("%w (preset %s requires the audit log)", err, p.Preset)
		}
		warn("%v: decision not audited", err)
		return t, nil
	}
	t.log = l
	return t, nil
}

// Active reports whether decisions are being written.
func (t *Trail) Active() bool { return t != nil && t.log != nil }

// Container says which create a record is about.
type Container struct {
	ID, Bundle string
	// DriverRoot is where the driver version is read.
	DriverRoot string
	// Before and After are config.json's bytes before and as written
	// (After nil for a refusal: nothing is written).
	Before, After []byte
}

// Record appends d and closes the trail. An append that fails is an error
// when the preset requires the audit, a warning otherwise.
func (t *Trail) Record(d *Decision, c Container) error {
	if !t.Active() {
		return nil
	}
	defer t.Close()
	rec := Record(d, c)
	if err := t.log.Append(rec); err != nil {
		if t.p.AuditRequired {
			return err
		}
		t.warn("%v: decision not audited", err)
	}
	return nil
}

// Close releases the log without recording (a create that failed before a
// decision).
func (t *Trail) Close() {
	if t.Active() {
		t.log.Close()
		t.log = nil
	}
}

// Record is d as an audit record.
func Record(d *Decision, c Container) audit.Record {
	r := audit.Record{
		Decision:     string(d.Outcome),
		Container:    c.ID,
		Bundle:       c.Bundle,
		Tenant:       d.Identity.Audit(),
		Asked:        d.Asked,
		Rule:         d.Rule,
		Reason:       d.Reason,
		Notes:        d.Notes,
		Profile:      d.Asked.Profile,
		ConfigBefore: audit.Sum(c.Before),
	}
	if d.Outcome != Refused {
		g := d.Granted
		r.Granted = &g
		r.ConfigAfter = audit.Sum(c.After)
	}
	if v, err := gpu.ReadDriverVersion(c.DriverRoot); err == nil {
		r.Driver = v
	}
	return r
}
