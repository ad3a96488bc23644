package recipes

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "aicr", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func encodeRecipe(t *testing.T, q Query) []byte {
	t.Helper()
	data, err := Encode(resolveRecipe(t, q), FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// applyPatch applies add/remove/replace operations with object paths, the
// subset JSONPatch emits, to a tree decoded from JSON.
func applyPatch(t *testing.T, doc map[string]any, patch []byte) {
	t.Helper()
	var ops []struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatal(err)
	}
	unescape := strings.NewReplacer("~1", "/", "~0", "~")
	for _, op := range ops {
		parts := strings.Split(op.Path, "/")[1:]
		m := doc
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[unescape.Replace(p)].(map[string]any)
			if !ok {
				t.Fatalf("patch path %s: %s is not an object", op.Path, p)
			}
			m = next
		}
		last := unescape.Replace(parts[len(parts)-1])
		_, exists := m[last]
		switch op.Op {
		case "add":
			if exists {
				t.Fatalf("add %s: already there", op.Path)
			}
			m[last] = op.Value
		case "replace":
			if !exists {
				t.Fatalf("replace %s: not there", op.Path)
			}
			m[last] = op.Value
		case "remove":
			if !exists {
				t.Fatalf("remove %s: not there", op.Path)
			}
			delete(m, last)
		default:
			t.Fatalf("unexpected op %q", op.Op)
		}
	}
}

// jsonTree decodes a tree through JSON so numbers compare as the patch's do.
func jsonTree(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDiffSnapshots(t *testing.T) {
	a, b := readTestdata(t, "h100.yaml"), readTestdata(t, "gb200.yaml")
	d, err := DiffDocuments(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Drift() {
		t.Fatal("no drift between an H100 and a GB200 node")
	}
	text := string(d.Text())
	for _, line := range []string{
		"~ GPU.smi.driver: 570.133.20 -> 580.82.07\n",
		"~ GPU.smi.gpu-count: 8 -> 4\n",
		"~ K8s.server.version: v1.30.14-eks-3025e55 -> v1.34.2-eks-b3126f4\n",
		"~ OS.sysctl./proc/sys/kernel/osrelease: 6.8.0-1024-aws -> 6.14.0-1018-aws-64k\n",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("drift report lacks %q", line)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line[min(2, len(line)):], "metadata.") {
			t.Errorf("metadata reported as drift: %s", line)
		}
	}

	patch, err := d.JSONPatch()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(patch), `"path": "/OS/sysctl/~1proc~1sys~1kernel~1osrelease"`) {
		t.Error("JSON patch does not escape / in keys")
	}
	ta, _ := snapshotTree(a)
	tb, _ := snapshotTree(b)
	got, want := jsonTree(t, ta), jsonTree(t, tb)
	applyPatch(t, got, patch)
	if !reflect.DeepEqual(got, want) {
		t.Error("applying the JSON patch to A does not give B")
	}

	same, err := DiffDocuments(a, a)
	if err != nil {
		t.Fatal(err)
	}
	if same.Drift() || string(same.Text()) != "no drift: the snapshots are the same\n" {
		t.Errorf("self diff: %s", same.Text())
	}
	if p, _ := same.JSONPatch(); string(p) != "[]\n" {
		t.Errorf("self diff patch = %s", p)
	}
}

func TestDiffRecipes(t *testing.T) {
	a := encodeRecipe(t, Query{Service: "eks", Accelerator: "h100", Intent: "training"})
	b := encodeRecipe(t, Query{Service: "eks", Accelerator: "gb200", Intent: "training"})
	d, err := DiffDocuments(a, b)
	if err != nil {
		t.Fatal(err)
	}
	text := string(d.Text())
	for _, line := range []string{
		"~ constraints.GPU.smi.gpu.model.value: =~ H100 -> =~ GB200\n",
		"+ components.nvidia-dra-driver-gpu.version: 25.12.0\n",
		"~ constraints.K8s.server.version.source: base -> gb200\n",
		"~ name: eks-h100-ubuntu-training -> eks-gb200-ubuntu-training\n",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("recipe diff lacks %q:\n%s", line, text)
		}
	}
	patch, err := d.JSONPatch()
	if err != nil {
		t.Fatal(err)
	}
	ta, _ := recipeTree(a)
	tb, _ := recipeTree(b)
	got, want := jsonTree(t, ta), jsonTree(t, tb)
	applyPatch(t, got, patch)
	if !reflect.DeepEqual(got, want) {
		t.Error("applying the JSON patch to recipe A does not give recipe B")
	}
}

func TestDiffErrors(t *testing.T) {
	snap := readTestdata(t, "h100.yaml")
	rec := encodeRecipe(t, Query{Service: "eks", Accelerator: "h100", Intent: "training"})
	for _, tt := range []struct {
		a, b []byte
		want string
	}{
		{snap, rec, "cannot compare a Snapshot with a Recipe"},
		{[]byte("kind: Overlay\n"), []byte("kind: Overlay\n"), `cannot compare documents of kind "Overlay"`},
		{[]byte("a: 1\n"), snap, "first document: no kind"},
		{snap, []byte("kind: Snapshot\nmeasurements: [{}]\n"), "second document"},
		{rec, []byte("kind: Recipe\napiVersion: nvbind.io/v1alpha1\ncomponents: {x: {}}\n"), "namespace is empty"},
		{rec, []byte("kind: Recipe\napiVersion: nvbind.io/v1alpha1\ncomponents: {x: {namespace: ns}}\n"), "repository is empty"},
	} {
		if _, err := DiffDocuments(tt.a, tt.b); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DiffDocuments error = %v, want %q", err, tt.want)
		}
	}
}

func TestPointer(t *testing.T) {
	for path, want := range map[string]string{
		"a":             "/a",
		"a\x00b/c":      "/a/b~1c",
		"x~y\x00":       "/x~0y/",
		"/proc/sys\x00": "/~1proc~1sys/",
	} {
		if got := pointer(strings.Split(path, "\x00")); got != want {
			t.Errorf("pointer(%q) = %q, want %q", path, got, want)
		}
	}
}
