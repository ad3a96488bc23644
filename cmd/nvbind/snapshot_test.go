package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/recipes"
	"github.com/nvbind/nvbind/internal/recipes/snapshot"
)

func TestSnapshotCLI(t *testing.T) {
	t.Setenv("NVBIND_CONFIG", filepath.Join(t.TempDir(), "none.toml"))
	old := nvmlFor
	t.Cleanup(func() { nvmlFor = old })
	nvmlFor = func(string) gpu.NVMLSource { return nil }

	root := t.TempDir()
	for name, content := range map[string]string{
		"etc/os-release":            "ID=ubuntu\nVERSION_ID=\"24.04\"\n",
		"proc/sys/kernel/osrelease": "6.8.0-1024-aws\n",
		"proc/modules":              "overlay 151552 0 - Live 0x0\n",
		"proc/cmdline":              "ro quiet\n",
	} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(root, name), []byte(content), 0o644)
	}
	run := func(args ...string) (int, string, string) {
		return cli(t, func(a []string, out, errb io.Writer) int {
			return snapshotCmd(a, snapshot.Options{Root: root}, out, errb)
		}, args...)
	}

	noDriver := filepath.Join(t.TempDir(), "no-driver")
	code, out, errs := run("--driver-root", noDriver)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	s, err := recipes.ReadSnapshot([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Lookup("OS.release.VERSION_ID"); v != "24.04" {
		t.Errorf("VERSION_ID = %q", v)
	}
	if _, ok := s.Unreadable("GPU.smi.driver"); !ok || !strings.Contains(errs, "snapshot is partial") {
		t.Errorf("no driver: GPU.smi not marked unreadable, stderr %q", errs)
	}

	file := filepath.Join(t.TempDir(), "node.json")
	if code, out, errs := run("--driver-root", noDriver, "--format", "json", "-o", file); code != 0 || out != "" {
		t.Fatalf("-o: exit %d, stdout %q: %s", code, out, errs)
	}
	data, err := os.ReadFile(file)
	var doc map[string]any
	if err != nil || json.Unmarshal(data, &doc) != nil || doc["kind"] != "Snapshot" {
		t.Errorf("json file: %v\n%.200s", err, data)
	}

	// The snapshot validates against a recipe like AICR's do.
	rec := renderTo(t, t.TempDir(), "--service", "self-managed", "--accelerator", "h100", "--intent", "inference", "--os", "ubuntu")
	code, out, _ = cli(t, recipeCmd, "validate", "--recipe", rec, "--snapshot", file)
	if code != 1 || !strings.Contains(out, "required, could not be read: ") {
		t.Errorf("validate of a GPU-less snapshot: exit %d\n%s", code, out)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "xml"}, "want yaml or json"},
		{[]string{"now"}, `unexpected argument "now"`},
		{[]string{"--bogus"}, "bogus"},
	} {
		code, _, errs := run(tt.args...)
		if code != 2 {
			t.Errorf("%v: exit %d", tt.args, code)
		}
		oneLine(t, errs, tt.want)
	}
}
