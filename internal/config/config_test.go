package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/profiles"
)

// examplePath is the documented config shipped at the repository root.
const examplePath = "../../config.toml.example"

// exampleProfile heads the commented-out user profile in the example.
const exampleProfile = "# [profiles.my-trainer]"

// uncommentedExample returns the example with its commented-out profile
// enabled: from exampleProfile on, one leading "#" (and one space) is
// removed from each line, so "## prose" stays a comment.
func uncommentedExample(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	start := -1
	for i, l := range lines {
		if l == exampleProfile {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("%s: no line %q", examplePath, exampleProfile)
	}
	for i := start; i < len(lines); i++ {
		l := strings.TrimPrefix(lines[i], "#")
		lines[i] = strings.TrimPrefix(l, " ")
	}
	return strings.Join(lines, "\n")
}

// TestExampleIsDefaults keeps config.toml.example's active values equal to
// Default(), section by section (a new section is compared automatically).
func TestExampleIsDefaults(t *testing.T) {
	cfg, err := config.LoadFile(examplePath)
	if err != nil {
		t.Fatalf("LoadFile(%s): %v", examplePath, err)
	}
	if cfg.Path != examplePath {
		t.Errorf("Path = %q, want %q", cfg.Path, examplePath)
	}
	if len(cfg.Profiles) != 0 {
		t.Errorf("example defines active profiles %v; the user profile must stay commented out", cfg.Profiles)
	}
	got, want := reflect.ValueOf(*cfg), reflect.ValueOf(*config.Default())
	for i := 0; i < got.NumField(); i++ {
		f := got.Type().Field(i)
		if f.Name == "Profiles" || f.Name == "Path" {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			if !reflect.DeepEqual(got.Field(i).Interface(), want.Field(i).Interface()) {
				t.Errorf("example [%s] = %+v, Default() = %+v", f.Tag.Get("toml"), got.Field(i).Interface(), want.Field(i).Interface())
			}
		})
	}
}

// TestExampleProfileParses checks the commented-out profile is valid
// config once enabled, and sets every field.
func TestExampleProfileParses(t *testing.T) {
	cfg := config.Default()
	if err := config.Parse([]byte(uncommentedExample(t)), cfg); err != nil {
		t.Fatalf("example with its profile enabled: %v", err)
	}
	p, ok := cfg.Profiles["my-trainer"]
	if !ok {
		t.Fatalf("profiles = %v, want my-trainer", cfg.Profiles)
	}
	v := reflect.ValueOf(p)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Errorf("example profile leaves %s unset", v.Type().Field(i).Tag.Get("toml"))
		}
	}
	// Every Mount field set in some mount (a bool can be true only once).
	mt := reflect.TypeOf(config.Mount{})
	for i := 0; i < mt.NumField(); i++ {
		set := false
		for _, m := range p.Mounts {
			set = set || !reflect.ValueOf(m).Field(i).IsZero()
		}
		if !set {
			t.Errorf("no example mount sets %s", mt.Field(i).Tag.Get("toml"))
		}
	}
}

// TestExampleProfileResolves checks the example is a profile the runtime
// accepts: extends chain, capabilities, env, mount options, devices,
// shm-size and rlimits. The required dataset mount gets a host path that
// exists.
func TestExampleProfileResolves(t *testing.T) {
	text := uncommentedExample(t)
	const dataset = `source = "/srv/datasets"`
	if !strings.Contains(text, dataset) {
		t.Fatalf("example has no line %s", dataset)
	}
	text = strings.Replace(text, dataset, `source = "`+t.TempDir()+`"`, 1)
	cfg := config.Default()
	if err := config.Parse([]byte(text), cfg); err != nil {
		t.Fatal(err)
	}
	cat, err := profiles.LoadCatalog(cfg)
	if err != nil {
		t.Fatalf("LoadCatalog: %v", err)
	}
	r, err := cat.Resolve("my-trainer", nil, profiles.Target{GPUs: 1})
	if err != nil {
		t.Fatalf("Resolve(my-trainer): %v", err)
	}
	if r.ShmSize != 32<<30 {
		t.Errorf("ShmSize = %d, want 32GiB", r.ShmSize)
	}
	if !reflect.DeepEqual(r.Capabilities, []string{"compute", "utility", "video"}) {
		t.Errorf("Capabilities = %v, want compute, utility, video", r.Capabilities)
	}
}

var (
	headerLine = regexp.MustCompile(`^\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?`)
	keyLine    = regexp.MustCompile(`^([A-Za-z0-9_-]+)\s*=`)
)

// docPath writes a key path with profile names as "*".
func docPath(parts ...string) string {
	p := strings.Split(strings.Join(parts, "."), ".")
	if len(p) > 1 && p[0] == "profiles" {
		p[1] = "*"
	}
	return strings.Trim(strings.Join(p, "."), ".")
}

// commentedKeys returns the key paths of text that have a comment line
// directly above them.
func commentedKeys(text string) map[string]bool {
	out := map[string]bool{}
	table, prevComment := "", false
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if m := headerLine.FindStringSubmatch(l); m != nil {
			table = m[1]
			out[docPath(table)] = out[docPath(table)] || prevComment
		} else if m := keyLine.FindStringSubmatch(l); m != nil {
			out[docPath(table, m[1])] = out[docPath(table, m[1])] || prevComment
		}
		prevComment = strings.HasPrefix(l, "#")
	}
	return out
}

// TestExampleDocumentsEveryKey fails when a field of the config structs is
// missing from config.toml.example or has no comment: add a documented
// line there when you add a field.
func TestExampleDocumentsEveryKey(t *testing.T) {
	text := uncommentedExample(t)
	var doc map[string]any
	if err := toml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	commented := commentedKeys(text)
	var walk func(typ reflect.Type, node map[string]any, path string)
	walk = func(typ reflect.Type, node map[string]any, path string) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			key := f.Tag.Get("toml")
			if key == "" || key == "-" {
				continue
			}
			p := docPath(path, key)
			v, ok := node[key]
			if !ok {
				t.Errorf("%s: key %s (%s.%s) is not in the example", examplePath, p, typ.Name(), f.Name)
				continue
			}
			ft := f.Type
			switch {
			case ft.Kind() == reflect.Struct:
				walk(ft, asTable(t, p, v), p)
			case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
				// An optional table ([policy]): documented like any other.
				walk(ft.Elem(), asTable(t, p, v), p)
			case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
				// One example entry must show every key.
				for name, e := range asTable(t, p, v) {
					walk(ft.Elem(), asTable(t, p+"."+name, e), p+"."+name)
				}
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				elems, _ := v.([]any)
				merged := map[string]any{}
				for _, e := range elems {
					for k, x := range asTable(t, p, e) {
						merged[k] = x
					}
				}
				if len(merged) == 0 {
					t.Errorf("%s: %s has no example entry", examplePath, p)
				}
				walk(ft.Elem(), merged, p)
				fallthrough
			default:
				if !commented[p] {
					t.Errorf("%s: key %s has no comment line directly above it", examplePath, p)
				}
			}
		}
	}
	walk(reflect.TypeOf(config.Config{}), doc, "")
}

func asTable(t *testing.T, path string, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%s: %s is %T, want a table", examplePath, path, v)
	}
	return m
}

// TestLoadFileErrors checks the messages a user sees for a bad config: the
// file, the line where one is known, and the offending key or value.
func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		// want is the whole message after "config <path>".
		want string
		// wantPart is used where the TOML library words the message.
		wantPart []string
	}{
		{
			name: "unknown key",
			data: "[runtime]\nruntimes = [\"runc\"]\nlog-levle = \"debug\"\n",
			want: `:3: unknown key "runtime.log-levle"`,
		},
		{
			name: "unknown section",
			data: "# comment\n[drivers]\nroot = \"/\"\n",
			want: `:2: unknown key "drivers"`,
		},
		{
			name: "unknown profile key",
			data: "[profiles.steam]\nextends = \"gaming\"\nshm_size = \"2GiB\"\n",
			want: `:3: unknown key "profiles.steam.shm_size"`,
		},
		{
			name: "unknown mount key",
			data: "[[profiles.steam.mounts]]\nsource = \"/srv\"\ntarget = \"/srv\"\nreadonly = true\n",
			want: `:4: unknown key "profiles.steam.mounts.readonly"`,
		},
		{
			name:     "malformed value",
			data:     "[runtime]\nlog-level = debug\n",
			wantPart: []string{":2: "},
		},
		{
			name:     "unclosed table",
			data:     "[cdi]\nspec-dirs = [\"/etc/cdi\"]\n[driver\nroot = \"/\"\n",
			wantPart: []string{":3: "},
		},
		{
			name:     "wrong type",
			data:     "[runtime]\nruntimes = \"runc\"\n",
			wantPart: []string{":2: runtime.runtimes: a string is not a valid value here (want []string)"},
		},
		{
			name: "bad log level",
			data: "[runtime]\nlog-level = \"verbose\"\n",
			want: `: runtime.log-level "verbose" is not one of error, warn, info, debug`,
		},
		{
			name: "empty runtimes",
			data: "[runtime]\nruntimes = []\n",
			want: `: runtime.runtimes must name at least one runtime`,
		},
		{
			name: "empty spec dirs",
			data: "[cdi]\nspec-dirs = []\n",
			want: `: cdi.spec-dirs must name at least one directory`,
		},
		{
			name: "bad default kind",
			data: "[cdi]\ndefault-kind = \"gpu\"\n",
			want: `: cdi.default-kind "gpu" is not of the form vendor.com/class`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, []byte(tt.data), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.LoadFile(path)
			if err == nil {
				t.Fatalf("LoadFile accepted %q: %+v", tt.data, cfg)
			}
			if cfg != nil {
				t.Errorf("LoadFile returned a config with its error: %+v", cfg)
			}
			prefix := "config " + path
			msg := err.Error()
			if tt.want != "" && msg != prefix+tt.want {
				t.Errorf("error\n got %q\nwant %q", msg, prefix+tt.want)
			}
			for i, part := range tt.wantPart {
				if i == 0 {
					part = prefix + part
					if !strings.HasPrefix(msg, part) {
						t.Errorf("error %q does not start with %q", msg, part)
					}
				} else if !strings.Contains(msg, part) {
					t.Errorf("error %q does not mention %q", msg, part)
				}
			}
		})
	}
}

func TestLoadFileMissingGivesDefaults(t *testing.T) {
	cfg, err := config.LoadFile(filepath.Join(t.TempDir(), "absent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Path != "" {
		t.Errorf("Path = %q, want \"\" for built-in defaults", cfg.Path)
	}
	if !reflect.DeepEqual(cfg, config.Default()) {
		t.Errorf("config = %+v, want Default() %+v", cfg, config.Default())
	}
}

func TestLoadFileUnreadable(t *testing.T) {
	dir := t.TempDir()
	_, err := config.LoadFile(dir)
	if err == nil || !strings.HasPrefix(err.Error(), "config "+dir+": ") {
		t.Fatalf("LoadFile(directory) error = %v, want one starting %q", err, "config "+dir+": ")
	}
}

// TestLoadFileOverrides checks a file changes only what it sets.
func TestLoadFileOverrides(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	data := "[runtime]\nlog-level = \"DEBUG\"\n[driver]\nroot = \"/run/nvidia/driver\"\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(config.EnvPath, path)
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.Runtime.LogLevel = "DEBUG"
	want.Driver.Root = "/run/nvidia/driver"
	want.Path = path
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load() = %+v, want %+v", cfg, want)
	}
}

func TestPath(t *testing.T) {
	t.Setenv(config.EnvPath, "")
	if got := config.Path(); got != config.DefaultPath {
		t.Errorf("Path() = %q, want %q", got, config.DefaultPath)
	}
	t.Setenv(config.EnvPath, "/tmp/nvbind.toml")
	if got := config.Path(); got != "/tmp/nvbind.toml" {
		t.Errorf("Path() with %s set = %q, want /tmp/nvbind.toml", config.EnvPath, got)
	}
}

func TestHookPath(t *testing.T) {
	c := config.Default()
	c.Hook.Path = "/opt/nvbind/nvbind-hook"
	if got := c.HookPath(); got != "/opt/nvbind/nvbind-hook" {
		t.Errorf("configured path: got %q", got)
	}
	c.Hook.Path = ""
	// The test binary has no nvbind-hook beside it.
	if got := c.HookPath(); got != "/usr/local/bin/nvbind-hook" {
		t.Errorf("fallback: got %q", got)
	}
}
