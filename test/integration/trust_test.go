package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUntrustedSpecSkipped: as root, nvbind-runtime skips a CDI spec file
// that a user other than root can change, or that sits in a directory
// such a user can change, with a warning naming it; `nvbind doctor`
// reports it. Before, a user who could write one spec file made every GPU
// container run their hook as root on the host.
func TestUntrustedSpecSkipped(t *testing.T) {
	requireRoot(t)
	for _, tt := range []struct {
		name string
		make func(s *SimRoot) string // returns the path reported
	}{
		{"file owned by a user", func(s *SimRoot) string {
			p := filepath.Join(s.SpecDir, "nvidia.json")
			os.Chown(p, 1000, 1000)
			return p
		}},
		{"group-writable file", func(s *SimRoot) string {
			p := filepath.Join(s.SpecDir, "nvidia.json")
			os.Chmod(p, 0o664)
			return p
		}},
		{"directory owned by a user", func(s *SimRoot) string {
			os.Chown(s.SpecDir, 1000, 1000)
			return s.SpecDir
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSimRoot(t, 1)
			named := tt.make(s)
			b := gpu0Bundle(t)
			before := b.ReadConfig(t)
			res := runContainer(t, s, b)
			if res.Code == 0 {
				t.Fatalf("container ran with an untrusted spec: %s", res)
			}
			if !strings.Contains(res.Stderr, "untrusted") || !strings.Contains(res.Stderr, named) {
				t.Errorf("error does not name the untrusted %s: %q", named, res.Stderr)
			}
			log, _ := os.ReadFile(s.LogFile())
			if !strings.Contains(string(log), `"level":"warning"`) || !strings.Contains(string(log), named) {
				t.Errorf("no warning naming %s in nvbind's log:\n%s", named, log)
			}
			if string(before) != string(b.ReadConfig(t)) {
				t.Errorf("config.json changed")
			}
			doc := runCmd(t, s.Env(), bins.CLI, "doctor")
			if !strings.Contains(doc.Stdout, "cdi-spec-trust") || !strings.Contains(doc.Stdout, named) {
				t.Errorf("doctor does not report %s:\n%s", named, doc.Stdout)
			}
		})
	}
}
