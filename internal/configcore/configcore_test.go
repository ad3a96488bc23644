package configcore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadFastOnly: the files ParseFast reads load as config.Load loads
// them; the others say they need the decoder.
func TestLoadFastOnly(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, doc string
		check     func(*Config) bool
		err       string // "" none; "decoder": ErrNeedsDecoder
	}{
		{"missing", "", func(c *Config) bool { return c.Path == "" && c.Runtime.Runtimes[0] == "runc" }, ""},
		{"usual", "[runtime]\nruntimes = [\"/usr/bin/crun\"]\nstate-dir = \"/s\"\n[ledger]\ndir = \"/l\"\n",
			func(c *Config) bool {
				return c.Runtime.Runtimes[0] == "/usr/bin/crun" && c.Runtime.StateDir == "/s" && c.Ledger.Dir == "/l" && c.CDI.DefaultKind == "nvidia.com/gpu"
			}, ""},
		{"invalid value", "[runtime]\nlog-level = \"loud\"\n", nil, `runtime.log-level "loud"`},
		{"relative ledger", "[ledger]\ndir = \"l\"\n", nil, `ledger.dir "l" is not an absolute path`},
		{"policy", "[policy]\npreset = \"server\"\n", nil, "decoder"},
		{"syntax", "[runtime\n", nil, "decoder"},
		{"unknown key", "[runtime]\nbogus = 1\n", nil, "decoder"},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name+".toml")
		if tt.doc != "" {
			os.WriteFile(path, []byte(tt.doc), 0o644)
		}
		cfg, err := Load(path, ParseFastOnly)
		switch {
		case tt.err == "decoder":
			if !errors.Is(err, ErrNeedsDecoder) {
				t.Errorf("%s: %v, want ErrNeedsDecoder", tt.name, err)
			}
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "config "+path+": ") {
				t.Errorf("%s: %v, want an error naming %s with %q", tt.name, err, path, tt.err)
			}
		case err != nil || !tt.check(cfg):
			t.Errorf("%s: %+v %v", tt.name, cfg, err)
		}
	}
}
