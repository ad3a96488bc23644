package oci

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/specconv"
)

func writeBundle(t *testing.T, data []byte, mode os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, SpecFile), data, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestSpecRoundTrip(t *testing.T) {
	want := specconv.Example()
	want.Process.Env = append(want.Process.Env, "NVIDIA_VISIBLE_DEVICES=0")
	want.Annotations = map[string]string{"cdi.k8s.io/x": "nvidia.com/gpu=0"}
	data, _ := json.Marshal(want)
	dir := writeBundle(t, data, 0o640)

	got, err := LoadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the spec")
	}
	got.Hostname = "changed"
	if err := WriteSpec(dir, got); err != nil {
		t.Fatal(err)
	}
	again, err := LoadSpec(dir)
	if err != nil || again.Hostname != "changed" {
		t.Fatalf("rewrite not read back: %v %q", err, again.Hostname)
	}
	fi, _ := os.Stat(filepath.Join(dir, SpecFile))
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}

	p, err := ParseProbe(data)
	if err != nil {
		t.Fatal(err)
	}
	if env := p.Env(); env[len(env)-1] != "NVIDIA_VISIBLE_DEVICES=0" || p.Annotations["cdi.k8s.io/x"] == "" {
		t.Errorf("probe missed the request: %v %v", env, p.Annotations)
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
			dir := writeBundle(t, []byte(tt.data), 0o600)
			_, err := LoadSpec(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := LoadSpec(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing config.json: %v", err)
	}
}
