package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func doctorCLI(args []string, out, errb *bytes.Buffer) int { return doctorCmd(args, out, errb) }

func TestDoctorCLI(t *testing.T) {
	t.Setenv("NVBIND_CONFIG", filepath.Join(t.TempDir(), "none.toml"))
	root := filepath.Join(t.TempDir(), "no-driver")
	code, out, errs := runCLI(t, doctorCLI, "--driver-root", root)
	if code != 0 && code != 1 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, s := range []string{"WARN  driver", "no NVIDIA GPU", "SKIP  cdi-spec", "summary: "} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	// The exit code says whether a check failed, and only that.
	if failed := strings.Contains(out, "\nFAIL "); failed != (code == 1) {
		t.Errorf("exit %d does not match the output:\n%s", code, out)
	}

	code, out, _ = runCLI(t, doctorCLI, "--json", "--driver-root", root)
	var r struct {
		Checks []struct{ Name, Status string }
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Checks) < 5 {
		t.Fatalf("--json: %v\n%s", err, out)
	}

	code, _, errs = runCLI(t, doctorCLI, "--bogus")
	if code != 2 || !strings.Contains(errs, "bogus") {
		t.Errorf("bad flag: %d %q", code, errs)
	}
}
