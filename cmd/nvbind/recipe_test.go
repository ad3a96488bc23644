package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/recipes"
)

const (
	aicrH100  = "../../internal/recipes/testdata/aicr/h100.yaml"
	aicrGB200 = "../../internal/recipes/testdata/aicr/gb200.yaml"
)

// cli runs one of the recipe commands and returns its exit code, stdout and
// stderr.
func cli(t *testing.T, fn func([]string, io.Writer, io.Writer) int, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := fn(args, &out, &errb)
	return code, out.String(), errb.String()
}

// oneLine checks an error is a single line naming the problem.
func oneLine(t *testing.T, stderr, want string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "nvbind: ") || !strings.Contains(stderr, want) {
		t.Errorf("stderr = %q, want one line with %q", stderr, want)
	}
}

func renderTo(t *testing.T, dir string, args ...string) string {
	t.Helper()
	p := filepath.Join(dir, "recipe.yaml")
	code, _, errs := cli(t, recipeCmd, append([]string{"render", "-o", p}, args...)...)
	if code != 0 {
		t.Fatalf("render: exit %d: %s", code, errs)
	}
	return p
}

func TestRecipeRenderCLI(t *testing.T) {
	code, out, errs := cli(t, recipeCmd, "render", "--service", "eks", "--accelerator", "h100", "--intent", "training")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d: %s", code, errs)
	}
	r, err := recipes.ReadRecipe([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "eks-h100-ubuntu-training" || r.Components["gpu-operator"].Version != "v25.10.1" {
		t.Errorf("recipe = %s %+v", r.Name, r.Components["gpu-operator"])
	}

	code, out, _ = cli(t, recipeCmd, "render", "--service=gke", "--accelerator=gb200", "--intent=inference", "--os", "cos", "--nodes", "16", "--format", "json")
	var j map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j["name"] != "gke-gb200-cos-inference-kserve-n16" {
		t.Errorf("json render: exit %d, name %v", code, j["name"])
	}

	dir := t.TempDir()
	p := renderTo(t, dir, "--service", "self-managed", "--accelerator", "l40s", "--intent", "inference")
	if data, err := os.ReadFile(p); err != nil || !strings.Contains(string(data), "name: self-managed-l40s-ubuntu-inference-kserve") {
		t.Errorf("-o file: %v\n%s", err, data)
	}

	bad := writeOverlayDir(t, map[string]string{
		"a.yaml": "apiVersion: nvbind.io/v1alpha1\nkind: Overlay\nname: a\ncriteria: {service: eks}\ncomponents: {nvbind: {version: 0.2.0}}\n",
		"b.yaml": "apiVersion: nvbind.io/v1alpha1\nkind: Overlay\nname: b\ncriteria: {intent: training}\ncomponents: {nvbind: {version: 0.3.0}}\n",
	})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"render", "--accelerator", "h100", "--intent", "training"}, "--service is required"},
		{[]string{"render", "--service", "eks", "--accelerator", "h800", "--intent", "training"}, `--accelerator "h800" is not one of`},
		{[]string{"render", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--format", "toml"}, "want yaml or json"},
		{[]string{"render", "--service", "eks", "--accelerator", "h100", "--intent", "training", "extra"}, `unexpected argument "extra"`},
		{[]string{"render", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--nodes", "many"}, "invalid value"},
		{[]string{"render", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--data", bad}, "overlays a and b"},
		{[]string{"render", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--data", filepath.Join(dir, "nope")}, "overlay directory"},
		{[]string{"frobnicate"}, `unknown subcommand "frobnicate"`},
	} {
		code, out, errs := cli(t, recipeCmd, tt.args...)
		if code != 2 || out != "" {
			t.Errorf("%v: exit %d, stdout %q; want 2 and nothing", tt.args, code, out)
		}
		oneLine(t, errs, tt.want)
	}
	if code, out, _ := cli(t, recipeCmd, "render", "-h"); code != 0 || !strings.Contains(out, "-accelerator") {
		t.Errorf("render -h: exit %d\n%s", code, out)
	}
	if code, _, errs := cli(t, recipeCmd); code != 2 || !strings.Contains(errs, "usage: nvbind recipe") {
		t.Errorf("no subcommand: exit %d %q", code, errs)
	}
}

func writeOverlayDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRecipeExplainCLI(t *testing.T) {
	code, out, errs := cli(t, recipeCmd, "explain", "--service", "gke", "--accelerator", "h100", "--intent", "training",
		"--path", "components.gpu-operator.values.driver.enabled")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if out != "components.gpu-operator.values.driver.enabled = false  <- gke (over base: true)\n" {
		t.Errorf("explain = %q", out)
	}
	code, _, errs = cli(t, recipeCmd, "explain", "--service", "gke", "--accelerator", "h100", "--intent", "training", "--path", "components.nope")
	if code != 2 {
		t.Errorf("missing path: exit %d", code)
	}
	oneLine(t, errs, "has no value at components.nope")
}

func TestRecipeValidateCLI(t *testing.T) {
	dir := t.TempDir()
	rec := renderTo(t, dir, "--service", "eks", "--accelerator", "h100", "--intent", "training")

	code, out, errs := cli(t, recipeCmd, "validate", "--recipe", rec, "--snapshot", aicrH100)
	if code != 0 || errs != "" {
		t.Fatalf("matching snapshot: exit %d: %s\n%s", code, errs, out)
	}
	if !strings.Contains(out, "readiness eks-h100-ubuntu-training: 10 passed, 0 failed, 0 skipped") {
		t.Errorf("table:\n%s", out)
	}

	code, out, _ = cli(t, recipeCmd, "validate", "--recipe", rec, "--snapshot", aicrGB200, "--format", "json")
	var rep recipes.Report
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.Failed != 2 {
		t.Errorf("mismatching snapshot: exit %d, report %+v", code, rep)
	}

	junit := filepath.Join(dir, "report.xml")
	code, out, errs = cli(t, recipeCmd, "validate", "--recipe", rec, "--snapshot", aicrGB200, "--format", "junit", "-o", junit)
	if code != 1 || out != "" || !strings.Contains(errs, "readiness eks-h100-ubuntu-training: 8 passed, 2 failed, 0 skipped") {
		t.Errorf("junit -o: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	data, err := os.ReadFile(junit)
	var doc struct {
		XMLName xml.Name
	}
	if err != nil || xml.Unmarshal(data, &doc) != nil || doc.XMLName.Local != "testsuites" {
		t.Errorf("junit file: %v\n%s", err, data)
	}

	notSnapshot := filepath.Join(dir, "not-a-snapshot.yaml")
	os.WriteFile(notSnapshot, []byte("kind: Recipe\n"), 0o644)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"validate", "--recipe", rec}, "--phase readiness needs --snapshot"},
		{[]string{"validate", "--snapshot", aicrH100}, "--recipe is required"},
		{[]string{"validate", "--recipe", rec, "--phase", "smoke"}, `--phase "smoke": want readiness, deployment, performance or conformance`},
		{[]string{"validate", "--recipe", rec, "--phase", "deployment"}, "--phase deployment needs --cluster-dump or --kubeconfig"},
		{[]string{"validate", "--recipe", rec, "--phase", "performance"}, "--phase performance needs --nccl-log"},
		{[]string{"validate", "--recipe", rec, "--phase", "conformance"}, "--phase conformance needs --evidence-dir"},
		{[]string{"validate", "--recipe", rec, "--snapshot", "cm://only-namespace"}, "want cm://namespace/name"},
		{[]string{"validate", "--recipe", filepath.Join(dir, "missing.yaml"), "--snapshot", aicrH100}, "no such file"},
		{[]string{"validate", "--recipe", aicrH100, "--snapshot", aicrH100}, `kind is "Snapshot", want Recipe`},
		{[]string{"validate", "--recipe", rec, "--snapshot", notSnapshot}, `kind is "Recipe", want Snapshot`},
		{[]string{"validate", "--recipe", rec, "--snapshot", aicrH100, "--format", "html"}, "want table, json, junit or ctrf"},
	} {
		code, _, errs := cli(t, recipeCmd, tt.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", tt.args, code)
		}
		oneLine(t, errs, tt.want)
	}
}

func TestRecipeDiffCLI(t *testing.T) {
	code, out, _ := cli(t, recipeCmd, "diff", aicrH100, aicrH100)
	if code != 0 || out != "no drift: the snapshots are the same\n" {
		t.Errorf("same snapshot: exit %d %q", code, out)
	}
	code, out, _ = cli(t, recipeCmd, "diff", aicrH100, aicrGB200)
	if code != 1 || !strings.Contains(out, "~ GPU.smi.gpu.model: NVIDIA H100 80GB HBM3 -> NVIDIA GB200\n") {
		t.Errorf("drift: exit %d\n%.400s", code, out)
	}
	// Flags may follow the files.
	code, out, _ = cli(t, recipeCmd, "diff", aicrH100, aicrGB200, "--format", "json-patch")
	var ops []map[string]any
	if code != 1 || json.Unmarshal([]byte(out), &ops) != nil || len(ops) == 0 {
		t.Errorf("json-patch: exit %d\n%.300s", code, out)
	}

	dir := t.TempDir()
	a := renderTo(t, dir, "--service", "eks", "--accelerator", "h100", "--intent", "training")
	b := filepath.Join(t.TempDir(), "b.yaml")
	if code, _, errs := cli(t, recipeCmd, "render", "--service", "eks", "--accelerator", "h100", "--intent", "inference", "-o", b); code != 0 {
		t.Fatal(errs)
	}
	code, out, _ = cli(t, recipeCmd, "diff", a, b)
	if code != 1 || !strings.Contains(out, "- components.aws-efa.chart: aws-efa-k8s-device-plugin\n") {
		t.Errorf("recipe drift: exit %d\n%s", code, out)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"diff", aicrH100}, "want two files"},
		{[]string{"diff", aicrH100, a}, "cannot compare a Snapshot with a Recipe"},
		{[]string{"diff", aicrH100, aicrH100, "--format", "unified"}, "want text or json-patch"},
		{[]string{"diff", aicrH100, filepath.Join(dir, "missing")}, "no such file"},
	} {
		code, _, errs := cli(t, recipeCmd, tt.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", tt.args, code)
		}
		oneLine(t, errs, tt.want)
	}
}
