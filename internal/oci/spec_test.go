package oci

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/specconv"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

func writeBundle(t *testing.T, data []byte, mode os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, SpecFile), data, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

func loadDocument(t *testing.T, bundle string) *Document {
	t.Helper()
	data, err := ReadSpec(filepath.Join(bundle, SpecFile))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ParseDocument(data)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestSpecRoundTrip(t *testing.T) {
	want := specconv.Example()
	want.Process.Env = append(want.Process.Env, "NVIDIA_VISIBLE_DEVICES=0")
	want.Annotations = map[string]string{"cdi.k8s.io/x": "nvidia.com/gpu=0"}
	data, _ := json.Marshal(want)
	dir := writeBundle(t, data, 0o640)

	got := loadDocument(t, dir)
	p := got.Spec.Process
	if !reflect.DeepEqual(p.Env, want.Process.Env) || !reflect.DeepEqual(p.User, want.Process.User) ||
		!reflect.DeepEqual(p.Rlimits, want.Process.Rlimits) || !reflect.DeepEqual(got.Spec.Mounts, want.Mounts) ||
		!reflect.DeepEqual(got.Spec.Linux.Resources.Devices, want.Linux.Resources.Devices) {
		t.Fatalf("decoded members differ from the spec written")
	}
	got.Spec.Process.Env = append(got.Spec.Process.Env, "CHANGED=1")
	if err := WriteDocument(filepath.Join(dir, SpecFile), got); err != nil {
		t.Fatal(err)
	}
	var again rspec.Spec
	raw, _ := os.ReadFile(filepath.Join(dir, SpecFile))
	if err := json.Unmarshal(raw, &again); err != nil {
		t.Fatal(err)
	}
	want.Process.Env = append(want.Process.Env, "CHANGED=1")
	if !reflect.DeepEqual(&again, want) {
		t.Fatalf("rewrite changed more than the env:\n%s", raw)
	}
	fi, _ := os.Stat(filepath.Join(dir, SpecFile))
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}

	doc := loadDocument(t, dir)
	if env := doc.Spec.Process.Env; env[len(env)-2] != "NVIDIA_VISIBLE_DEVICES=0" || doc.Spec.Annotations["cdi.k8s.io/x"] == "" {
		t.Errorf("document missed the request: %v %v", env, doc.Spec.Annotations)
	}
}

func TestLoadSpecErrors(t *testing.T) {
	full, _ := json.Marshal(specconv.Example())
	tests := []struct {
		name, data, want string
	}{
		{"truncated", string(full[:len(full)/2]), "invalid config.json: unexpected end of JSON input"},
		{"empty", "", "invalid config.json: unexpected end of JSON input"},
		{"not an object", "[1,2]", "invalid config.json"},
		{"no version", `{"process":{}}`, "no ociVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDocument([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := ReadSpec(filepath.Join(t.TempDir(), SpecFile)); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing config.json: %v", err)
	}
}

func TestDocumentKeepsWhatItDoesNotEdit(t *testing.T) {
	in := `{"ociVersion":"1.2.0","process":{"args":["sh"],"env":["A=1"],"cwd":"/","futureProcessKnob":7},
"root":{"path":"rootfs"},"x-engine":{"keep":[1,2,3]},
"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]},
"namespaces":[{"type":"pid"}],"futureLinuxKnob":{"a":"b"}}}`
	doc, err := ParseDocument([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Spec.Process.Env[0] != "A=1" {
		t.Fatalf("edited parts not decoded: %+v", doc.Spec)
	}
	doc.Spec.Process.Env = append(doc.Spec.Process.Env, "B=2")
	doc.Spec.Linux.Devices = append(doc.Spec.Linux.Devices, rspec.LinuxDevice{Path: "/dev/nvidia0", Type: "c", Major: 195})
	out, err := doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, want string }{
		{"unknown top-level key kept", `"x-engine":{"keep":[1,2,3]}`},
		{"unknown linux key kept", `"futureLinuxKnob":{"a":"b"}`},
		{"seccomp kept", `"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]`},
		{"root kept", `"root":{"path":"rootfs"}`},
		{"namespaces kept", `"namespaces":[{"type":"pid"}]`},
		{"unknown process key kept, in place", `"cwd":"/","futureProcessKnob":7}`},
		{"member order kept", `{"ociVersion":"1.2.0","process":{"args":["sh"],"env":`},
		{"env edited", `"env":["A=1","B=2"]`},
		{"device added", `"devices":[{"path":"/dev/nvidia0","type":"c","major":195,"minor":0}]`},
	}
	for _, tt := range tests {
		if !strings.Contains(string(out), tt.want) {
			t.Errorf("%s: %s not in %s", tt.name, tt.want, out)
		}
	}
	for _, absent := range []string{`"mounts"`, `"hooks"`, `"annotations"`, `"resources"`} {
		if strings.Contains(string(out), absent) {
			t.Errorf("%s added although absent and empty: %s", absent, out)
		}
	}
}

// Keys match case-insensitively, as runc's encoding/json decode does, and
// are written back under the name they had.
func TestDocumentKeyCase(t *testing.T) {
	doc, err := ParseDocument([]byte(`{"ociVersion":"1.2.0","Process":{"env":["A=1"]},"AnnotAtions":{"k":"v"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Spec.Process == nil || doc.Spec.Annotations["k"] != "v" {
		t.Fatalf("case-variant keys not decoded: %+v", doc.Spec)
	}
	doc.Spec.Process.Env = append(doc.Spec.Process.Env, "B=2")
	out, _ := doc.Marshal()
	if !strings.Contains(string(out), `"Process":{`) || strings.Contains(string(out), `"process"`) {
		t.Errorf("edited member not written back under its own key: %s", out)
	}
}

// Members an edit needs are created, and a null parent becomes an object.
func TestDocumentCreatesParents(t *testing.T) {
	doc, err := ParseDocument([]byte(`{"ociVersion":"1.2.0","process":null}`))
	if err != nil {
		t.Fatal(err)
	}
	doc.Spec.Process = &rspec.Process{Env: []string{"A=1"}}
	doc.Spec.Linux.Resources = &rspec.LinuxResources{Devices: []rspec.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}
	out, err := doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ociVersion":"1.2.0","process":{"env":["A=1"]},"linux":{"resources":{"devices":[{"allow":true,"access":"rwm"}]}}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

func TestParseDocumentErrors(t *testing.T) {
	for in, want := range map[string]string{
		`{"ociVersion":"1.2.0","process":{"env":"notalist"}}`:  "process",
		`{"ociVersion":"1.2.0","linux":[]}`:                    "linux",
		`{"ociVersion":"1.2.0","linux":{"resources":7}}`:       "resources",
		`{"ociVersion":"1.2.0","process":{"ENV":[],"env":[]}}`: "given twice",
		`{"process":{}}`:        "no ociVersion",
		`null`:                  "not a JSON object",
		`{"ociVersion":"1.2.0"`: "unexpected end of JSON input",
	} {
		if _, err := ParseDocument([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", in, err, want)
		}
	}
}

func TestMayRequest(t *testing.T) {
	tests := []struct {
		spec string
		want bool
	}{
		{`{"process":{"env":["PATH=/bin","TERM=xterm"]}}`, false},
		{`{"process":{"env":["NVIDIA_VISIBLE_DEVICES=0"]}}`, true},
		{`{"process":{"env":["NVBIND_PROFILE=ml"]}}`, true},
		{`{"annotations":{"cdi.k8s.io\/x":"nvidia.com/gpu=0"}}`, true},
		{`{"annotations":{"nvbind.io/profile":"ml"}}`, true},
		// Letters spelled as \u escapes: decode to be sure.
		{`{"process":{"env":["\u004eVIDIA_VISIBLE_DEVICES=0"]}}`, true},
	}
	for _, tt := range tests {
		if got := MayRequest([]byte(tt.spec)); got != tt.want {
			t.Errorf("MayRequest(%s) = %v, want %v", tt.spec, got, tt.want)
		}
	}
}
