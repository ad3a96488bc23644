package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/audit"
)

func TestPolicyLintCmd(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	t.Setenv("NVBIND_CONFIG", cfg)
	tests := []struct {
		text, out, errOut string
		code              int
	}{
		{"", "no [policy] table", "", 0},
		{"[policy]\npreset = \"server\"\n[[policy.rules]]\nname = \"a\"\n", "preset server, rules a, server:privileged, server", "", 0},
		{"[policy]\n[[policy.rules]]\nallow.max-devices = -1\n", "", "policy.rules[0]: allow.max-devices -1", 1},
		{"[policy]\npreset = 3\n", "", ":2: policy.preset", 1},
	}
	for _, tt := range tests {
		os.WriteFile(cfg, []byte(tt.text), 0o644)
		var stdout, stderr bytes.Buffer
		code := policyCmd([]string{"lint"}, &stdout, &stderr)
		if code != tt.code || !strings.Contains(stdout.String(), tt.out) || !strings.Contains(stderr.String(), tt.errOut) {
			t.Errorf("lint %q: exit %d, stdout %q, stderr %q", tt.text, code, stdout.String(), stderr.String())
		}
	}
}

func TestAuditCmd(t *testing.T) {
	log := filepath.Join(t.TempDir(), "audit.log")
	for _, c := range []string{"a", "b", "a"} {
		l, err := audit.Open(log, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		l.Append(audit.Record{Decision: "allowed", Container: c, Rule: "r", Tenant: audit.Tenant{Key: "t"}})
		l.Close()
	}
	var stdout, stderr bytes.Buffer
	if code := auditCmd([]string{"verify", log}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "ok: 3 lines") {
		t.Fatalf("verify: %d %s %s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := auditCmd([]string{"show", "--container", "a", "--json", log}, &stdout, &stderr); code != 0 || strings.Count(stdout.String(), "\n") != 2 {
		t.Errorf("show --container a: %d %q", code, stdout.String())
	}
	stdout.Reset()
	if code := auditCmd([]string{"show", "--since", "1h", log}, &stdout, &stderr); code != 0 || strings.Count(stdout.String(), "\n") != 4 {
		t.Errorf("show --since 1h: %d %q", code, stdout.String())
	}
	stdout.Reset()
	if code := auditCmd([]string{"show", "--since", "2999-01-01T00:00:00Z", log}, &stdout, &stderr); code != 0 || strings.Count(stdout.String(), "\n") != 1 {
		t.Errorf("show --since future: %d %q", code, stdout.String())
	}
	stderr.Reset()
	if code := auditCmd([]string{"show", "--since", "yesterday", log}, &stdout, &stderr); code != 2 {
		t.Errorf("bad --since: %d %q", code, stderr.String())
	}
	data, _ := os.ReadFile(log)
	os.WriteFile(log, bytes.Replace(data, []byte(`"container":"b"`), []byte(`"container":"c"`), 1), 0o600)
	stderr.Reset()
	if code := auditCmd([]string{"verify", log}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), log+":2: hash mismatch") {
		t.Errorf("verify after an edit: %d %q", code, stderr.String())
	}
}
