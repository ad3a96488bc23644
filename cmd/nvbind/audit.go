package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nvbind/nvbind/internal/audit"
	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/policy"
)

func init() { addCommand(newAuditCmd) }

func newAuditCmd(stdout, stderr io.Writer) *cobra.Command {
	verify := &cobra.Command{
		Use:   "verify [FILE]",
		Short: "check the audit log's hash chain (and its rotated files); name the first broken line",
		RunE:  func(_ *cobra.Command, args []string) error { return code(auditVerify(args, stdout, stderr)) },
	}
	var o auditShowOptions
	show := &cobra.Command{
		Use:   "show [FILE]",
		Short: "print the policy decisions, filtered",
		RunE:  func(_ *cobra.Command, args []string) error { return code(auditShow(o, args, stdout, stderr)) },
	}
	f := show.Flags()
	f.StringVar(&o.since, "since", "", "only decisions since a duration ago (1h) or a time (RFC 3339)")
	f.StringVar(&o.container, "container", "", "only decisions about this container id")
	f.BoolVar(&o.json, "json", false, "print the records as JSON lines")
	return group("audit", "verify and show the policy decision log", stdout, stderr, verify, show)
}

// auditCmd runs `nvbind audit args...`.
func auditCmd(args []string, stdout, stderr io.Writer) int {
	return execute(append([]string{"audit"}, args...), stdout, stderr)
}

type auditShowOptions struct {
	since, container string
	json             bool
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
func auditVerify(pos []string, stdout, stderr io.Writer) int {
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
func auditShow(o auditShowOptions, pos []string, stdout, stderr io.Writer) int {
	since, container, asJSON := &o.since, &o.container, &o.json
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
