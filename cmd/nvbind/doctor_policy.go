package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/engines"
	"github.com/nvbind/nvbind/internal/policy"
)

// addPolicyCheck adds the policy to a doctor report: a malformed policy
// fails every GPU create, so it is a failure here too.
func addPolicyCheck(r *engines.Report, cfg *config.Config, cfgErr error) {
	c := engines.Check{Name: "policy"}
	p, err := policy.Load(cfg)
	switch {
	case cfgErr != nil:
		c.Status, c.Message = engines.Skip, "config not loaded"
	case err != nil:
		c.Status = engines.Fail
		c.Message = fmt.Sprintf("%s: %v: nvbind-runtime refuses every GPU container", configName(cfg), err)
		c.Fix = "correct the [policy] table (nvbind policy lint), see docs/policy.md"
	case p.Off:
		c.Status, c.Message = engines.Pass, "no [policy] table: every request allowed, nothing audited"
	default:
		c.Status = engines.Pass
		c.Message = fmt.Sprintf("preset %s, rules %s, audit log %s", p.Preset, strings.Join(p.Rules(), ", "), p.AuditLog)
		if err := auditWritable(p.AuditLog); err != nil {
			c.Status = engines.Warn
			if p.AuditRequired {
				c.Status = engines.Fail
			}
			c.Message += fmt.Sprintf(": cannot be written (%v)", err)
			c.Fix = "create " + filepath.Dir(p.AuditLog) + " (0700, root) or set [policy] audit-log"
		}
	}
	r.Checks = append(r.Checks, c)
	if r.Summary == nil {
		r.Summary = map[engines.Status]int{}
	}
	r.Summary[c.Status]++
}

// auditWritable checks, without writing, that the log (or the directory it
// would be made in) can be written by this user.
func auditWritable(path string) error {
	for p := path; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			return unix.Access(p, unix.W_OK)
		}
		if p == "/" || p == "." {
			return os.ErrNotExist
		}
	}
}
