package profiles

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/config"
)

func mustCatalog(t *testing.T, cfg *config.Config) *Catalog {
	t.Helper()
	c, err := LoadCatalog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// minimalParams are what each built-in needs to resolve.
var minimalParams = map[string]map[string]string{
	"ollama":        {"size": "8b", "gpu-memory": "24GiB"},
	"llm-inference": {"size": "8b", "gpu-memory": "24GiB"},
}

func TestBuiltinsParseAndResolve(t *testing.T) {
	c := mustCatalog(t, config.Default())
	want := []string{"gaming", "llm-inference", "ml", "ollama"}
	if got := c.Names(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("built-in profiles %v, want %v", got, want)
	}
	for _, name := range want {
		t.Run(name, func(t *testing.T) {
			d := c.builtin[name]
			for p, decl := range d.Params {
				if err := checkParamDef(p, decl); err != nil {
					t.Error(err)
				}
			}
			r, err := c.Resolve(name, minimalParams[name], Target{GPUs: 1})
			if err != nil {
				t.Fatal(err)
			}
			if r.Description == "" || len(r.Capabilities) == 0 {
				t.Errorf("no description or capabilities: %+v", r)
			}
			for _, s := range r.Settings {
				if s.Source == "" {
					t.Errorf("setting %s %s has no source", s.Kind, s.Name)
				}
				if s.Kind == "env" {
					if _, ok := KnownEnv[s.Name]; !ok {
						t.Errorf("%s sets %s, which is not in the allowlist", name, s.Name)
					}
				}
			}
		})
	}
	// Every when block and every parameter value must resolve: try each
	// enum and bool value of every parameter.
	for name, d := range c.builtin {
		for p, decl := range d.Params {
			vals := decl.Values
			if decl.Type == typeBool {
				vals = []string{"true", "false"}
			}
			for _, v := range vals {
				params := map[string]string{p: v}
				for k, mv := range minimalParams[name] {
					params[k] = mv
				}
				if _, err := c.Resolve(name, params, Target{GPUs: 1}); err != nil {
					t.Errorf("%s %s=%s: %v", name, p, v, err)
				}
			}
		}
	}
}

func TestCapabilities(t *testing.T) {
	c := mustCatalog(t, config.Default())
	for name, want := range map[string]string{
		"gaming": "compute,display,graphics,ngx,utility,video",
		"ml":     "compute,utility",
		"ollama": "compute,utility",
	} {
		got, err := c.Capabilities(name)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%s: capabilities %v, want %s", name, got, want)
		}
	}
}

// dataEnv returns, per built-in profile, every variable its own data file
// can set (any parameter value) with its value template.
func dataEnv(t *testing.T) map[string]map[string]string {
	t.Helper()
	c := mustCatalog(t, config.Default())
	out := map[string]map[string]string{}
	add := func(profile, name, value string) {
		if out[profile] == nil {
			out[profile] = map[string]string{}
		}
		if old, ok := out[profile][name]; ok && old != value {
			t.Errorf("%s sets %s to both %q and %q", profile, name, old, value)
		}
		out[profile][name] = value
	}
	for name, d := range c.builtin {
		addMounts := func(ms []mountDef) {
			for _, m := range ms {
				for k, v := range m.Env {
					add(name, k, v)
				}
			}
		}
		for k, v := range d.Env {
			add(name, k, v)
		}
		addMounts(d.Mounts)
		for _, w := range d.When {
			for k, v := range w.Env {
				add(name, k, v)
			}
			addMounts(w.Mounts)
		}
		if d.Tuner == "ollama" {
			for _, k := range ollamaEnvNames {
				add(name, k, "computed")
			}
		}
	}
	return out
}

type docRow struct{ value, consumer string }

// docsEnv parses the env table of docs/profiles.md.
func docsEnv(t *testing.T) map[string]map[string]docRow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "profiles.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	begin := strings.Index(text, "<!-- env-table:begin -->")
	end := strings.Index(text, "<!-- env-table:end -->")
	if begin < 0 || end < begin {
		t.Fatal("docs/profiles.md has no env-table markers")
	}
	out := map[string]map[string]docRow{}
	for _, line := range strings.Split(text[begin:end], "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| Profile") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) != 5 {
			t.Fatalf("docs row with %d cells: %q", len(cells), line)
		}
		profile := strings.TrimSpace(cells[0])
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if out[profile] == nil {
			out[profile] = map[string]docRow{}
		}
		if _, dup := out[profile][name]; dup {
			t.Errorf("docs list %s %s twice", profile, name)
		}
		out[profile][name] = docRow{value: strings.TrimSpace(cells[2]), consumer: strings.TrimSpace(cells[3])}
	}
	return out
}

// TestDocsTableMatchesData fails when docs/profiles.md, the data files and
// the allowlist disagree on a variable, its value or its consumer.
func TestDocsTableMatchesData(t *testing.T) {
	data := dataEnv(t)
	docs := docsEnv(t)
	used := map[string]bool{}
	for profile, vars := range data {
		for name, value := range vars {
			used[name] = true
			known, ok := KnownEnv[name]
			if !ok {
				t.Errorf("%s sets %s, which is not in KnownEnv", profile, name)
			}
			row, ok := docs[profile][name]
			if !ok {
				t.Errorf("%s sets %s, which docs/profiles.md does not list", profile, name)
				continue
			}
			if row.consumer != known.Consumer {
				t.Errorf("%s: docs say consumer %q, allowlist %q", name, row.consumer, known.Consumer)
			}
			switch {
			case value == "computed":
				if !strings.HasPrefix(row.value, "computed") {
					t.Errorf("%s %s: docs value %q, want it to say computed", profile, name, row.value)
				}
			case row.value != "`"+value+"`":
				t.Errorf("%s %s: docs value %s, data %q", profile, name, row.value, value)
			}
			if !strings.Contains(value, "${") && value != "computed" {
				if err := CheckEnv(name, value); err != nil {
					t.Errorf("%s: %v", profile, err)
				}
			}
		}
	}
	for profile, vars := range docs {
		for name := range vars {
			if _, ok := data[profile][name]; !ok {
				t.Errorf("docs list %s %s, which the data does not set", profile, name)
			}
		}
	}
	for name := range KnownEnv {
		if !used[name] {
			t.Errorf("KnownEnv lists %s, which no built-in profile sets", name)
		}
	}
}

func TestResolveErrors(t *testing.T) {
	c := mustCatalog(t, config.Default())
	tests := []struct {
		profile string
		params  map[string]string
		want    string
	}{
		{"gamer", nil, `unknown profile "gamer" (valid: gaming, llm-inference, ml, ollama)`},
		{"ml", map[string]string{"shm": "1g"}, `profile ml: unknown parameter "shm" (valid: cache-dir, shm-size)`},
		{"ml", map[string]string{"shm-size": "lots"}, `parameter shm-size: "lots" is not a size`},
		{"ml", map[string]string{"cache-dir": "relative/dir"}, `parameter cache-dir: "relative/dir" is not a clean absolute path`},
		{"gaming", map[string]string{"display": "x12"}, `parameter display: "x12" is not one of none, x11, wayland, both`},
		{"gaming", map[string]string{"input": "maybe"}, `parameter input: "maybe" is not a boolean`},
		{"gaming", map[string]string{"x11-display": "../etc"}, `parameter x11-display: "../etc" has characters`},
		{"gaming", map[string]string{"x11-display": "abc", "display": "x11"}, `DISPLAY="abc" is not valid for Xlib/XCB`},
		{"ollama", map[string]string{"precision": "fp8", "size": "8b"}, `parameter precision: "fp8" is not one of fp16, q8, q4, auto`},
		{"ollama", map[string]string{"parallel": "0", "size": "8b"}, `parameter parallel: "0" is not a positive integer or auto`},
		{"ollama", map[string]string{"kv-cache": "q5_0", "size": "8b"}, `is not one of f16, q8_0, q4_0, auto`},
		{"ollama", map[string]string{"keep-alive": "forever", "size": "8b"}, `is not a duration`},
		{"ollama", map[string]string{"gpu-memory": "80GB-ish", "size": "8b"}, `parameter gpu-memory: "80GB-ish" is not a size`},
		{"ollama", nil, `parameter model or size is required`},
		{"ollama", map[string]string{"model": "llama3.1:70b", "gpu-memory": "24GiB"}, `needs about 43.1 GiB of GPU memory`},
		{"llm-inference", map[string]string{"model": "llama3.1:70b", "gpu-memory": "24GiB"}, `allow-overcommit=true`},
	}
	for _, tt := range tests {
		t.Run(tt.profile+" "+tt.want, func(t *testing.T) {
			_, err := c.Resolve(tt.profile, tt.params, Target{GPUs: 1})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseDefinitionRejectsUnknownKeys(t *testing.T) {
	_, err := parseDefinition([]byte("description = \"x\"\nenvv = { A = \"1\" }\n"))
	if err == nil || !strings.Contains(err.Error(), `unknown key "envv"`) {
		t.Fatalf("error %v, want unknown key envv", err)
	}
}

func userConfig(t *testing.T, toml string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func settingsByName(r *Resolved, kind string) map[string]Setting {
	out := map[string]Setting{}
	for _, s := range r.Settings {
		if s.Kind == kind {
			out[s.Name] = s
		}
	}
	return out
}

func TestUserProfiles(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "library")
	if err := os.Mkdir(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := userConfig(t, `
[profiles.steam]
extends = "gaming"
description = "Steam"
capabilities = ["compat32"]
shm-size = "2GiB"
env = { __GL_SHADER_DISK_CACHE_SIZE = "21474836480", MANGOHUD = "1" }
devices = ["/dev/null", "/dev/nonexistent*"]
rlimits = { nofile = "524288", memlock = "unlimited" }
[[profiles.steam.mounts]]
source = "`+lib+`"
target = "/library"
[[profiles.steam.mounts]]
source = "`+filepath.Join(dir, "missing")+`"
target = "/missing"
optional = true

[profiles.ml]
shm-size = "32GiB"
`)
	c := mustCatalog(t, cfg)
	if got := strings.Join(c.Names(), ","); got != "gaming,llm-inference,ml,ollama,steam" {
		t.Fatalf("names %s", got)
	}
	r, err := c.Resolve("steam", map[string]string{"display": "x11"}, Target{GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Capabilities, ","); got != "compat32,compute,display,graphics,ngx,utility,video" {
		t.Errorf("capabilities %s", got)
	}
	env := settingsByName(r, "env")
	if s := env["__GL_SHADER_DISK_CACHE_SIZE"]; s.Value != "21474836480" || !strings.Contains(s.Source, "profile steam (config "+cfg.Path+")") {
		t.Errorf("override: %+v", s)
	}
	if s := env["PROTON_ENABLE_NVAPI"]; s.Value != "1" || !strings.Contains(s.Source, "profile gaming (built-in)") {
		t.Errorf("inherited: %+v", s)
	}
	if env["MANGOHUD"].Value != "1" {
		t.Errorf("user variable missing: %+v", env)
	}
	mounts := settingsByName(r, "mount")
	if mounts["/library"].Skipped != "" || mounts["/missing"].Skipped == "" {
		t.Errorf("mounts: %+v", mounts)
	}
	if r.ShmSize != 2<<30 {
		t.Errorf("shm %d, want 2GiB", r.ShmSize)
	}
	devs := settingsByName(r, "device")
	if devs["/dev/null"].Skipped != "" || devs["/dev/nonexistent*"].Skipped == "" {
		t.Errorf("devices: %+v", devs)
	}
	if len(r.Edits.DeviceNodes) != 1 || r.Edits.DeviceNodes[0].Path != "/dev/null" {
		t.Errorf("device nodes %+v", r.Edits.DeviceNodes)
	}
	rl := map[string]uint64{}
	for _, l := range r.Rlimits {
		rl[l.Type] = l.Hard
	}
	if rl["RLIMIT_NOFILE"] != 524288 || rl["RLIMIT_MEMLOCK"] != ^uint64(0) {
		t.Errorf("rlimits %+v", r.Rlimits)
	}
	// The user's "ml" layers over the built-in one.
	r, err = c.Resolve("ml", nil, Target{GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.ShmSize != 32<<30 || settingsByName(r, "env")["CUDA_DEVICE_ORDER"].Value != "PCI_BUS_ID" {
		t.Errorf("ml override: shm %d, env %+v", r.ShmSize, settingsByName(r, "env"))
	}
	if len(r.Chain) != 2 {
		t.Errorf("chain %v, want built-in ml then config ml", r.Chain)
	}
}

func TestUserProfileErrors(t *testing.T) {
	tests := []struct{ toml, want string }{
		{"[profiles.a]\nextends = \"b\"\n[profiles.b]\nextends = \"a\"\n", "extends loop"},
		{"[profiles.a]\nextends = \"nope\"\n", `extends unknown profile "nope"`},
		{"[profiles.a]\ncapabilities = [\"gfx\"]\n", `unknown capability "gfx"`},
		{"[profiles.a]\nenv = { OLLAMA_KV_CACHE_TYPE = \"q5\" }\n", `OLLAMA_KV_CACHE_TYPE="q5" is not valid for Ollama`},
		{"[profiles.a]\nenv = { \"BAD-NAME\" = \"1\" }\n", `invalid environment variable name "BAD-NAME"`},
		{"[profiles.a]\nshm-size = \"huge\"\n", `shm-size: "huge" is not a size`},
		{"[profiles.a]\nrlimits = { nofiles = \"1\" }\n", `rlimits.nofiles`},
		{"[profiles.a]\n[[profiles.a.mounts]]\nsource = \"/tmp\"\ntarget = \"rel\"\n", "paths must be clean and absolute"},
		{"[profiles.a]\n[[profiles.a.mounts]]\nsource = \"/tmp\"\ntarget = \"/x\"\noptions = [\"shared\"]\n", `option "shared" not allowed`},
		{"[profiles.a]\n[[profiles.a.mounts]]\nsource = \"/nonexistent-nvbind\"\ntarget = \"/x\"\n", "host path /nonexistent-nvbind"},
		{"[profiles.a]\nenv = { X = \"${nope}\" }\n", `unknown parameter "nope"`},
		{"[profiles.Bad]\n", "invalid profile name"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			c, err := LoadCatalog(userConfig(t, tt.toml))
			if err == nil {
				_, err = c.Resolve("a", nil, Target{GPUs: 1})
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestConfigRejectsUnknownProfileKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(path, []byte("[profiles.a]\nenvironment = { A = \"1\" }\n"), 0o644)
	if _, err := config.LoadFile(path); err == nil || !strings.Contains(err.Error(), "profiles.a.environment") {
		t.Fatalf("error %v, want unknown key profiles.a.environment", err)
	}
}

func TestGamingOptInMounts(t *testing.T) {
	run := t.TempDir()
	os.MkdirAll(filepath.Join(run, "pulse"), 0o755)
	for _, f := range []string{"wayland-0", "pulse/native"} {
		os.WriteFile(filepath.Join(run, f), nil, 0o600)
	}
	cache := t.TempDir()
	c := mustCatalog(t, config.Default())
	r, err := c.Resolve("gaming", map[string]string{"display": "wayland", "audio": "pipewire", "runtime-dir": run, "cache-dir": cache, "prime": "true"}, Target{GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	mounts := settingsByName(r, "mount")
	for target, skipped := range map[string]bool{
		run + "/wayland-0":    false,
		run + "/pulse/native": false,
		run + "/pipewire-0":   true, // not on this "host"
		"/var/cache/nvbind":   false,
	} {
		if s, ok := mounts[target]; !ok || (s.Skipped != "") != skipped {
			t.Errorf("mount %s: %+v, want skipped=%v", target, s, skipped)
		}
	}
	env := strings.Join(r.Edits.Env, " ")
	for _, want := range []string{"WAYLAND_DISPLAY=wayland-0", "XDG_RUNTIME_DIR=" + run, "PULSE_SERVER=unix:" + run + "/pulse/native",
		"__GL_SHADER_DISK_CACHE_PATH=/var/cache/nvbind", "DXVK_STATE_CACHE_PATH=/var/cache/nvbind", "__NV_PRIME_RENDER_OFFLOAD=1"} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %s: %s", want, env)
		}
	}
	if strings.Contains(env, "DISPLAY=:0") {
		t.Errorf("x11 not asked for, DISPLAY set: %s", env)
	}
	var targets []string
	for _, m := range r.Edits.Mounts {
		targets = append(targets, m.ContainerPath)
	}
	sort.Strings(targets)
	if want := []string{run + "/pulse/native", run + "/wayland-0", "/var/cache/nvbind"}; strings.Join(targets, ",") != strings.Join(sortedCopy(want), ",") {
		t.Errorf("edits mount %v, want %v", targets, want)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
