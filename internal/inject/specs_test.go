package inject

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/specconv"
)

func writeSpecFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const jsonSpecFixture = `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","containerEdits":{"env":["FROM=%s"]},
 "devices":[{"name":"0","containerEdits":{"env":["DEV0=%s"]}},{"name":"%s","containerEdits":{"env":["X=1"]}}]}`

const yamlSpec = `cdiVersion: 0.5.0
kind: example.com/nic
devices:
- name: eth0
  containerEdits:
    env: ["NIC=eth0"]
`

func TestReadSpecDirs(t *testing.T) {
	low, high := t.TempDir(), t.TempDir()
	writeSpecFile(t, low, "a.json", strings.NewReplacer("%s", "low").Replace(jsonSpecFixture))
	writeSpecFile(t, high, "b.json", strings.NewReplacer("%s", "high").Replace(jsonSpecFixture))
	writeSpecFile(t, high, "nic.yaml", yamlSpec)
	writeSpecFile(t, high, "ignored.txt", "not a spec")
	writeSpecFile(t, high, "bad.json", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","bogus":1}`)

	set, err := readSpecDirs([]string{low, high, filepath.Join(t.TempDir(), "missing")}, nil, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		device string
		want   []string // env entries in the container
	}{
		{"nvidia.com/gpu=0", []string{"FROM=high", "DEV0=high"}}, // later dir wins
		{"nvidia.com/gpu=low", []string{"FROM=low", "X=1"}},      // only in the low dir
		{"example.com/nic=eth0", []string{"NIC=eth0"}},           // YAML through the CDI library
	}
	for _, tt := range tests {
		t.Run(tt.device, func(t *testing.T) {
			spec := specconv.Example()
			spec.Process.Env = nil
			if err := set.inject(spec, []string{tt.device}); err != nil {
				t.Fatal(err)
			}
			if strings.Join(spec.Process.Env, " ") != strings.Join(tt.want, " ") {
				t.Errorf("env %v, want %v", spec.Process.Env, tt.want)
			}
		})
	}
	if err := set.errors[filepath.Join(high, "bad.json")]; err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown field not reported: %v", err)
	}
	err = set.inject(specconv.Example(), []string{"nvidia.com/gpu=9"})
	for _, want := range []string{"unresolvable CDI device nvidia.com/gpu=9", low, high, "bad.json"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %q", err, want)
		}
	}
}

func TestReadSpecDirsConflict(t *testing.T) {
	dir := t.TempDir()
	writeSpecFile(t, dir, "a.json", strings.NewReplacer("%s", "a").Replace(jsonSpecFixture))
	writeSpecFile(t, dir, "b.json", strings.NewReplacer("%s", "b").Replace(jsonSpecFixture))
	set, err := readSpecDirs([]string{dir}, nil, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if set.has("nvidia.com/gpu=0") {
		t.Error("a device two specs of one dir define must be unusable")
	}
	if !set.has("nvidia.com/gpu=a") || !set.has("nvidia.com/gpu=b") {
		t.Error("devices without conflict must stay usable")
	}
}

// A bad spec or device is never injected: the create fails naming it.
// JSON devices are checked when first used, the rest when the spec is read.
func TestValidateSpecRejects(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"bad version", `{"cdiVersion":"9.9.9","kind":"nvidia.com/gpu","devices":[{"name":"0","containerEdits":{"env":["A=1"]}}]}`, "invalid version"},
		{"bad kind", `{"cdiVersion":"0.5.0","kind":"gpu","devices":[{"name":"0","containerEdits":{"env":["A=1"]}}]}`, "unresolvable"},
		{"bad name", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"../0","containerEdits":{"env":["A=1"]}}]}`, `invalid class "../0"`},
		{"empty device", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"0","containerEdits":{}}]}`, `device "0" has no edits`},
		{"null device edits", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"0","containerEdits":null}]}`, `device "0" has no edits`},
		{"mount without host path", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"0","containerEdits":{"mounts":[{"hostPath":"","containerPath":"/x"}]}}]}`, "invalid mount"},
		{"unknown edit field", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"0","containerEdits":{"bogus":1}}]}`, "bogus"},
		{"null device node", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"0","containerEdits":{"deviceNodes":[null]}}]}`, "deviceNodes: null is not an element"},
		{"edit field twice", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"0","containerEdits":{"env":["A=1"],"env":["B=1"]}}]}`, `"env" given twice`},
		{"major not an integer", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"0","containerEdits":{"deviceNodes":[{"path":"/dev/x","major":1.5}]}}]}`, "major: 1.5 is not a 64-bit integer"},
		{"version too low for content", `{"cdiVersion":"0.3.0","kind":"nvidia.com/gpu","devices":[{"name":"0","containerEdits":{"additionalGids":[5]}}]}`, "version must be at least"},
		{"no devices", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[]}`, "no devices"},
		{"truncated", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devi`, "unexpected end of JSON input"},
		{"unknown spec field", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","bogus":1,"devices":[{"name":"0","containerEdits":{"env":["A=1"]}}]}`, `top level: unknown field "bogus"`},
		{"name not a string", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":0,"containerEdits":{"env":["A=1"]}}]}`, "name: 0 is not a UTF-8 string"},
		{"annotation not a string", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","annotations":{"a":1},"devices":[{"name":"0","containerEdits":{"env":["A=1"]}}]}`, "annotations: 1 is not a UTF-8 string"},
		{"unknown device field", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"0","bogus":1,"containerEdits":{"env":["A=1"]}}]}`, `devices: unknown field "bogus"`},
		{"devices not a list", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":{}}`, "devices: {} is not a list"},
		{"nested too deep", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","annotations":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, "nested deeper"},
		{"bad common edits", `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","containerEdits":{"env":"A=1"},"devices":[{"name":"0","containerEdits":{"env":["A=1"]}}]}`, `containerEdits: env: "A=1" is not a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeSpecFile(t, dir, "x.json", tt.content)
			set, err := readSpecDirs([]string{dir}, nil, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			spec := specconv.Example()
			before := strings.Join(spec.Process.Env, ",")
			err = set.inject(spec, []string{"nvidia.com/gpu=0"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want it to contain %q", err, tt.want)
			}
			if strings.Join(spec.Process.Env, ",") != before {
				t.Error("a refused device changed the spec")
			}
		})
	}
}

// TestNestingWithin: brackets inside strings (escaped quotes and
// backslashes included) do not count; nesting past the limit is found.
func TestNestingWithin(t *testing.T) {
	for _, c := range []struct {
		data string
		want bool
	}{
		{`{"a":[1,2,{"b":"c"}]}`, true},
		{`[[[[1]]]]`, false},
		{`[[[1]]]`, true},
		{`{"a":"[[[[[[[["}`, true},
		{`{"a":"\"[[[[[["}`, true},
		{`{"a":"\\"}[[[[`, false},
		{`{"a":"\\\"[[[[["}`, true},
		{`{"a":"x\\\\"}[[[[`, false},
		{`"unterminated [[[[[[`, true},
		{``, true},
	} {
		if got := nestingWithin([]byte(c.data), 3); got != c.want {
			t.Errorf("nestingWithin(%s, 3) = %v, want %v", c.data, got, c.want)
		}
	}
}
