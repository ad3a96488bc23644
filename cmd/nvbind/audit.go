package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nvbind/nvbind/internal/audit"
	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/policy"
)

func init() {
	register("audit", "verify and show the policy decision log", runAudit)
}

func runAudit(args []string) int {
	return auditCmd(args, os.Stdout, os.Stderr)
}

func auditCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return failTo(stderr, 2, "audit: want a subcommand: verify [FILE], show [--since D|TIME] [--container ID] [--json] [FILE]")
	}
	switch args[0] {
	case "verify":
		return auditVerify(args[1:], stdout, stderr)
	case "show":
		return auditShow(args[1:], stdout, stderr)
	}
	return failTo(stderr, 2, "audit: unknown subcommand %q (valid: verify, show)", args[0])
}

// auditLogPath is FILE when given, else the configured audit log.
func auditLogPath(pos []string, stderr io.Writer, cmd string) (string, int, bool) {
	if len(pos) > 1 {
		return "", failTo(stderr, 2, "%s: unexpected argument %q", cmd, pos[1]), false
	}
	if len(pos) == 1 {
		return pos[0], 0, true
	}
	cfg, err := config.Load()
	if err != nil {
		return "", failTo(stderr, 1, "%s: %v", cmd, err), false
	}
	if cfg.Policy != nil && cfg.Policy.AuditLog != "" {
		return cfg.Policy.AuditLog, 0, true
	}
	return policy.DefaultAuditLog, 0, true
}

// auditVerify checks the chain over FILE and its rotated files.
func auditVerify(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("audit verify")
	pos, code, done := parseCmdFlags(fs, args, stdout, stderr)
	if done {
		return code
	}
	path, code, ok := auditLogPath(pos, stderr, "audit verify")
	if !ok {
		return code
	}
	files := audit.Files(path)
	n, err := audit.Verify(files)
	var b *audit.Break
	switch {
	case errors.As(err, &b):
		return failTo(stderr, 1, "audit verify: %v", b)
	case err != nil:
		return failTo(stderr, 1, "audit verify: %v", err)
	}
	fmt.Fprintf(stdout, "ok: %d lines in %d file(s), chain intact (%s)\n", n, len(files), strings.Join(files, ", "))
	return 0
}

// auditShow prints the decisions, filtered.
func auditShow(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("audit show")
	since := fs.String("since", "", "only decisions since a duration ago (1h) or a time (RFC 3339)")
	container := fs.String("container", "", "only decisions about this container id")
	asJSON := fs.Bool("json", false, "print the records as JSON lines")
	pos, code, done := parseCmdFlags(fs, args, stdout, stderr)
	if done {
		return code
	}
	path, code, ok := auditLogPath(pos, stderr, "audit show")
	if !ok {
		return code
	}
	var from time.Time
	if *since != "" {
		if d, err := time.ParseDuration(*since); err == nil {
			from = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, *since); err == nil {
			from = t
		} else {
			return failTo(stderr, 2, "audit show: --since %q is neither a duration (1h) nor an RFC 3339 time", *since)
		}
	}
	recs, err := audit.Read(audit.Files(path), func(r *audit.Record) bool {
		if *container != "" && r.Container != *container {
			return false
		}
		if !from.IsZero() {
			t, err := time.Parse(time.RFC3339Nano, r.Time)
			return err == nil && !t.Before(from)
		}
		return true
	})
	if err != nil {
		return failTo(stderr, 1, "audit show: %v", err)
	}
	if *asJSON {
		for _, r := range recs {
			if err := writeJSONLine(stdout, r); err != nil {
				return failTo(stderr, 1, "audit show: %v", err)
			}
		}
		return 0
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tDECISION\tCONTAINER\tTENANT\tRULE\tASKED\tGRANTED / REASON")
	for _, r := range recs {
		outcome := r.Reason
		if r.Granted != nil {
			outcome = describe(*r.Granted)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time, r.Decision, r.Container, r.Tenant.Key, r.Rule, describe(r.Asked), outcome)
	}
	w.Flush()
	return 0
}

// writeJSONLine prints v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
