package config

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// decodeSlow is Parse's decoder path alone.
func decodeSlow(data []byte) (*Config, error) {
	cfg := Default()
	err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(cfg)
	return cfg, err
}

// TestParseFastMatchesDecoder: whatever parseFast takes, the decoder
// decodes to the same Config; whatever it leaves (every document the
// decoder refuses among them), the decoder reads.
func TestParseFastMatchesDecoder(t *testing.T) {
	for _, c := range []struct {
		name, doc string
		fast      bool
	}{
		{"empty", "", true},
		{"comments", "# nothing\n\n  # set\n", true},
		{"every fast key", `[runtime]
runtimes = ["crun", "/usr/bin/runc"] # trailing comment
log-file = "/var/log/nvbind.log"
log-level = 'debug'
state-dir = """/run/x"""
[cdi]
spec-dirs = [
  "/etc/cdi",   # one
  "/var/run/cdi",
]
default-kind = "example.com/gpu"
jit-spec = ""
[driver]
root = "/run/nvidia/driver"
inventory = "/tmp/inv.json"
[hook]
path = "/opt/nvbind-hook"
in-runtime = false
`, true},
		{"bool true", "[hook]\nin-runtime = true\n", true},
		{"bool as string", "[hook]\nin-runtime = \"false\"\n", false},
		{"escapes", "[hook]\npath = \"/opt/a\\u00e9\\tb\"\n", true},
		{"quoted key", "[runtime]\n\"log-level\" = \"warn\"\n", true},
		{"empty list", "[runtime]\nruntimes = []\n", true},
		{"tables in another order", "[hook]\npath = \"/h\"\n[runtime]\nlog-level = \"info\"\n", true},
		{"crlf", "[runtime]\r\nlog-level = \"warn\"\r\n", true},

		{"unknown key", "[runtime]\nruntimez = [\"runc\"]\n", false},
		{"unknown table", "[runtim]\nlog-level = \"info\"\n", false},
		{"key in another case", "[runtime]\nLog-Level = \"info\"\n", false},
		{"top-level key", "log-level = \"info\"\n", false},
		{"dotted key", "runtime.log-level = \"info\"\n", false},
		{"dotted table", "[runtime.x]\n", false},
		{"repeated key", "[runtime]\nlog-level = \"info\"\nlog-level = \"warn\"\n", false},
		{"repeated table", "[runtime]\n[runtime]\n", false},
		{"wrong type", "[runtime]\nlog-level = 3\n", false},
		{"string for a list", "[runtime]\nruntimes = \"runc\"\n", false},
		{"list of ints", "[runtime]\nruntimes = [1]\n", false},
		{"mixed list", "[runtime]\nruntimes = [\"runc\", 1]\n", false},
		{"nested list", "[runtime]\nruntimes = [[\"runc\"]]\n", false},
		{"inline table", "[runtime]\nruntimes = {a = \"b\"}\n", false},
		{"array table", "[[runtime]]\n", false},
		{"profiles", "[profiles.x]\ncapabilities = [\"compute\"]\n", false},
		{"policy", "[policy]\npreset = \"server\"\n", false},
		{"syntax error", "[runtime\nlog-level = \"info\"\n", false},
		{"unterminated string", "[runtime]\nlog-level = \"info\n", false},
		{"bad escape", "[runtime]\nlog-level = \"\\q\"\n", false},
		{"no newline between", "[runtime] log-level = \"info\"\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Default()
			if ok := parseFast([]byte(c.doc), got); ok != c.fast {
				t.Fatalf("parseFast took it: %v, want %v", ok, c.fast)
			} else if !ok {
				if !reflect.DeepEqual(got, Default()) {
					t.Errorf("parseFast changed the config it left: %+v", got)
				}
				return
			}
			want, err := decodeSlow([]byte(c.doc))
			if err != nil {
				t.Fatalf("parseFast took a document the decoder refuses: %v", err)
			}
			normalize := func(c *Config) {
				for _, l := range []*[]string{&c.Runtime.Runtimes, &c.CDI.SpecDirs} {
					if len(*l) == 0 {
						*l = nil
					}
				}
			}
			normalize(got)
			normalize(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parseFast:\n%+v\ndecoder:\n%+v", got, want)
			}
		})
	}
}

// TestParseFastExample: config.toml.example (all but its defaults
// commented out) decodes alike both ways.
func TestParseFastExample(t *testing.T) {
	data, err := os.ReadFile("../../config.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	got := Default()
	if !parseFast(data, got) {
		t.Fatal("parseFast left config.toml.example to the decoder")
	}
	want, err := decodeSlow(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseFast:\n%+v\ndecoder:\n%+v", got, want)
	}
}

// TestParseFastRefusals: the documents parseFast leaves that the decoder
// also refuses get the decoder's errors through Parse.
func TestParseFastRefusals(t *testing.T) {
	for doc, want := range map[string]string{
		"[runtime]\nruntimez = [\"runc\"]\n":                   `:2: unknown key "runtime.runtimez"`,
		"[runtime]\nlog-level = 3\n":                           ":2: runtime.log-level: ",
		"[runtime]\nlog-level = \"info\"\nlog-level = \"x\"\n": ":3: ",
	} {
		err := Parse([]byte(doc), Default())
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q...", doc, err, want)
		}
	}
}

// FuzzParseFast: whatever parseFast takes, the decoder takes too and
// decodes to the same Config; whatever it leaves, it leaves untouched.
func FuzzParseFast(f *testing.F) {
	for _, seed := range []string{
		"", "[runtime]\nruntimes = [\"runc\"]\nlog-level = 'debug'\n",
		"[cdi]\nspec-dirs = [\"/a\", \"/b\",]\njit-spec = \"\"\n[driver]\nroot = \"/\"\n",
		"[hook]\npath = \"/h\\u00e9\"\n[runtime]\nstate-dir = \"\"\"x\"\"\"\n",
		"[runtime]\nlog-level = 3\n", "[policy]\npreset = \"server\"\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		got := Default()
		if !parseFast([]byte(doc), got) {
			if !reflect.DeepEqual(got, Default()) {
				t.Fatalf("parseFast changed the config it left: %+v", got)
			}
			return
		}
		want, err := decodeSlow([]byte(doc))
		if err != nil {
			t.Fatalf("parseFast took %q, which the decoder refuses: %v", doc, err)
		}
		for _, c := range []*Config{got, want} {
			for _, l := range []*[]string{&c.Runtime.Runtimes, &c.CDI.SpecDirs} {
				if len(*l) == 0 {
					*l = nil
				}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: parseFast %+v, decoder %+v", doc, got, want)
		}
	})
}
