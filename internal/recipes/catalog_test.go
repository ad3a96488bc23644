package recipes

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func mustLoad(t testing.TB, dir string) *Catalog {
	t.Helper()
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// criteriaSpace is every query the catalog's criteria values allow, with
// node counts around each nodes criterion's bounds.
func criteriaSpace(c *Catalog) []Query {
	nodes := []int{0}
	for _, o := range c.Overlays {
		if o.nodes == nil {
			continue
		}
		for _, v := range o.nodes.Values {
			n, err := strconv.ParseFloat(v, 64)
			if err == nil {
				nodes = append(nodes, int(n)-1, int(n), int(n)+1)
			}
		}
	}
	var qs []Query
	for _, s := range c.Enums.Service {
		for _, a := range c.Enums.Accelerator {
			for _, osName := range append([]string{""}, c.Enums.OS...) {
				for _, i := range c.Enums.Intent {
					for _, n := range nodes {
						if n >= 0 {
							qs = append(qs, Query{Service: s, Accelerator: a, OS: osName, Intent: i, Nodes: n})
						}
					}
				}
			}
		}
	}
	return qs
}

// TestEmbeddedFiles checks every embedded file on its own: it parses
// strictly, is named after its file, and only uses known criteria values.
func TestEmbeddedFiles(t *testing.T) {
	c := mustLoad(t, "")
	files, err := fs.Glob(embedded, "data/overlays/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(c.Overlays) {
		t.Errorf("%d overlay files but %d overlays", len(files), len(c.Overlays))
	}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".yaml")
		o, ok := c.Overlays[name]
		if !ok {
			t.Errorf("%s: no overlay named %s (an overlay is named after its file)", f, name)
			continue
		}
		if o.Description == "" {
			t.Errorf("%s: no description", f)
		}
		if name != BaseOverlay && o.Specificity() == 0 {
			t.Errorf("%s: an overlay other than base needs criteria", f)
		}
	}
}

// TestEveryQueryResolves resolves every combination of criteria values: no
// two overlays of equal specificity set a value differently, every
// component is complete, dependencies resolve and have no cycle.
// TestEveryQuery: every query the criteria allow either resolves (a
// supported combination) or is refused with the nearest supported ones.
func TestEveryQuery(t *testing.T) {
	c := mustLoad(t, "")
	qs := criteriaSpace(c)
	if len(qs) < 600 {
		t.Fatalf("criteria space has %d queries, expected the full product", len(qs))
	}
	resolved := map[Combination]bool{}
	for _, q := range qs {
		full := c.Complete(q)
		cb := Combination{full.Service, full.Accelerator, full.OS, full.Intent}
		res, err := c.Resolve(q)
		supported := slices.Contains(c.Support, cb)
		switch {
		case supported && err != nil:
			t.Errorf("%s: %v", q.Name(), err)
		case !supported && (err == nil || !strings.Contains(err.Error(), "is not a supported combination; nearest supported: ")):
			t.Errorf("%s: unsupported, want a refusal with suggestions, got %v", q.Name(), err)
		case supported:
			resolved[cb] = true
			checkStackInvariants(t, res.Recipe)
		}
	}
	if len(resolved) != len(c.Support) {
		t.Errorf("%d of %d supported combinations resolved", len(resolved), len(c.Support))
	}
}

func TestUnsupportedSuggestions(t *testing.T) {
	c := mustLoad(t, "")
	for _, tt := range []struct {
		q    Query
		want string
	}{
		{Query{Service: "gke", Accelerator: "h100", OS: "rhel", Intent: "training"},
			"gke + h100 + rhel + training is not a supported combination; nearest supported: gke-h100-cos-training"},
		{Query{Service: "eks", Accelerator: "h100", OS: "cos", Intent: "training"},
			"nearest supported: eks-h100-ubuntu-training, eks-h100-amazonlinux-training, gke-h100-cos-training"},
		{Query{Service: "gke", Accelerator: "l40s", Intent: "inference"},
			"gke + l40s + (no supported os) + inference is not a supported combination"},
		{Query{Service: "eks", Accelerator: "l40s", OS: "ubuntu", Intent: "training"},
			"eks-a100-ubuntu-training, eks-gb200-ubuntu-training, eks-l40s-ubuntu-inference"},
	} {
		_, err := c.Resolve(tt.q)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Resolve(%s) error = %v, want %q", tt.q.Name(), err, tt.want)
		}
	}
}

// checkStackInvariants holds for every recipe: nvbind is the runtime, the
// GPU Operator's toolkit is off, and the operator's pods use nvbind's
// RuntimeClass.
func checkStackInvariants(t *testing.T, r *Recipe) {
	t.Helper()
	nv, ok := r.Components["nvbind"]
	if !ok {
		t.Errorf("%s: no nvbind component", r.Name)
		return
	}
	gpuOp, ok := r.Components["gpu-operator"]
	if !ok {
		t.Errorf("%s: no gpu-operator component", r.Name)
		return
	}
	if got := valueAt(gpuOp.Values, "toolkit.enabled"); got != false {
		t.Errorf("%s: gpu-operator toolkit.enabled = %v, want false where nvbind is the runtime", r.Name, got)
	}
	rc := valueAt(nv.Values, "runtimeClass.name")
	if rc == nil || valueAt(gpuOp.Values, "operator.runtimeClass") != rc {
		t.Errorf("%s: gpu-operator operator.runtimeClass = %v, want nvbind's RuntimeClass %v", r.Name, valueAt(gpuOp.Values, "operator.runtimeClass"), rc)
	}
	if !slices.Contains(gpuOp.DependsOn, "nvbind") {
		t.Errorf("%s: gpu-operator does not depend on nvbind", r.Name)
	}
	if valueAt(nv.Values, "runtimeClass.create") != true {
		t.Errorf("%s: nvbind does not create its RuntimeClass", r.Name)
	}
	if got, want := valueAt(nv.Values, "install.driverRoot"), valueAt(gpuOp.Values, "hostPaths.driverInstallDir"); want != nil && got != want {
		t.Errorf("%s: nvbind install.driverRoot %v != gpu-operator driverInstallDir %v", r.Name, got, want)
	}
}

func valueAt(m map[string]any, dotted string) any {
	var v any = m
	for _, k := range strings.Split(dotted, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// TestChartPins pins the chart versions the stack was checked with, and
// that no version is a range.
func TestChartPins(t *testing.T) {
	want := map[string][2]string{
		"cert-manager":          {"https://charts.jetstack.io", "v1.17.2"},
		"gpu-operator":          {"https://helm.ngc.nvidia.com/nvidia", "v25.10.1"},
		"nvidia-dra-driver-gpu": {"https://helm.ngc.nvidia.com/nvidia", "25.12.0"},
		"kai-scheduler":         {"oci://ghcr.io/nvidia/kai-scheduler", "v0.13.0"},
		"kube-prometheus-stack": {"https://prometheus-community.github.io/helm-charts", "82.8.0"},
		"skyhook-operator":      {"https://helm.ngc.nvidia.com/nvidia/skyhook", "v0.14.0"},
		"network-operator":      {"https://helm.ngc.nvidia.com/nvidia", "25.1.0"},
		"nvbind":                {"bundled", "0.1.0"},
	}
	c := mustLoad(t, "")
	base := c.Overlays[BaseOverlay]
	for name, w := range want {
		comp := base.Components[name]
		if comp == nil {
			t.Errorf("base has no %s", name)
			continue
		}
		if comp.Repository != w[0] || comp.Version != w[1] {
			t.Errorf("%s: %s %s, want %s %s", name, comp.Repository, comp.Version, w[0], w[1])
		}
	}
	exact := regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+$`)
	for _, o := range c.Overlays {
		for name, comp := range o.Components {
			if comp != nil && comp.Version != "" && !exact.MatchString(comp.Version) {
				t.Errorf("%s: %s version %q is not an exact x.y.z", o.File, name, comp.Version)
			}
		}
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const head = "apiVersion: nvbind.io/v1alpha1\nkind: Overlay\n"

// TestCatalogRejects: each broken user overlay is refused with an error
// naming the file and the problem.
func TestCatalogRejects(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"unknown criteria value", head + "name: x\ncriteria: {service: nks}\n", `criteria.service "nks" is not one of`},
		{"missing parent", head + "name: x\nbase: nope\ncriteria: {service: eks}\n", `base "nope": no such overlay`},
		{"parent not less specific", head + "name: x\nbase: eks\ncriteria: {service: eks}\n", "base eks must have fewer criteria than x"},
		{"parent criteria not repeated", head + "name: x\nbase: eks\ncriteria: {service: gke, intent: training}\n", "base eks has criteria x does not repeat"},
		{"unknown field", head + "name: x\ncriteria: {service: eks}\nconstraint: {}\n", `unknown field "constraint"`},
		{"wrong apiVersion", "apiVersion: v1\nkind: Overlay\nname: x\n", `apiVersion is "v1"`},
		{"wrong kind", "apiVersion: nvbind.io/v1alpha1\nkind: Recipe\nname: x\n", `kind is "Recipe"`},
		{"bad name", head + "name: X_1\ncriteria: {service: eks}\n", `overlay name "X_1"`},
		{"bad constraint name", head + "name: x\ncriteria: {service: eks}\nconstraints: {GPU.driver: {value: '>= 1'}}\n", "name must be Type.subtype.key"},
		{"bad constraint value", head + "name: x\ncriteria: {service: eks}\nconstraints: {GPU.smi.driver: {value: '>= abc'}}\n", "needs a version or a number"},
		{"unknown dependency", head + "name: x\ncriteria: {service: eks}\ncomponents: {nvbind: {dependsOn: [nope]}}\n", `dependsOn "nope", which no overlay defines`},
		{"bad repository", head + "name: x\ncriteria: {service: eks}\ncomponents: {nvbind: {repository: 'ftp://x'}}\n", "must start with https:// or oci://"},
		{"bad nodes", head + "name: x\ncriteria: {service: eks, nodes: '>= many'}\n", "criteria.nodes"},
		{"duplicate key", head + "name: x\nname: y\n", "duplicate"},
		{"not yaml", "{{{", "yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"x.yaml": tt.file})
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want one containing %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "x.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestCatalogRejectsParentCycle(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml": head + "name: a\nbase: b\ncriteria: {service: eks, intent: training}\n",
		"b.yaml": head + "name: b\nbase: a\ncriteria: {service: eks, intent: training}\n",
	})
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "fewer criteria") && !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("Load error = %v, want a cycle error", err)
	}
}

func TestUserOverlays(t *testing.T) {
	q := Query{Service: "eks", Accelerator: "h100", Intent: "training"}
	t.Run("layered after embedded of equal specificity", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{
			"site.yaml": head + "name: aaa-site\ncriteria: {service: eks}\n" +
				"components: {gpu-operator: {values: {driver: {version: 570.172.08}}}}\n" +
				"constraints: {K8s.node.provider: {value: '=~ ^eks', required: true}}\n",
		})
		res, err := mustLoad(t, dir).Resolve(q)
		if err != nil {
			t.Fatal(err)
		}
		if got := valueAt(res.Recipe.Components["gpu-operator"].Values, "driver.version"); got != "570.172.08" {
			t.Errorf("driver.version = %v, want the user overlay's", got)
		}
		c := res.Recipe.Constraints["K8s.node.provider"]
		if c.Value != "=~ ^eks" || !c.Required || c.Source != "aaa-site" {
			t.Errorf("constraint = %+v, want the user overlay's", c)
		}
		// "aaa-site" sorts before "eks" yet applies after it: user layer.
		want := []string{"base", "eks", "h100", "training", "ubuntu", "aaa-site", "eks-training", "eks-ubuntu", "eks-ubuntu-training"}
		if !slices.Equal(res.Recipe.Overlays, want) {
			t.Errorf("overlays = %v, want %v", res.Recipe.Overlays, want)
		}
	})
	t.Run("replaces an embedded overlay of the same name", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{
			"eks.yaml": head + "name: eks\ndescription: mine\ncriteria: {service: eks}\n",
		})
		res, err := mustLoad(t, dir).Resolve(q)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := res.Recipe.Constraints["K8s.node.provider"]; ok {
			t.Error("the embedded eks overlay still applied")
		}
	})
	t.Run("equal-specificity conflict between user overlays", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{
			"a.yaml": head + "name: a\ncriteria: {service: eks}\ncomponents: {nvbind: {version: 0.2.0}}\n",
			"b.yaml": head + "name: b\ncriteria: {intent: training}\ncomponents: {nvbind: {version: 0.3.0}}\n",
		})
		_, err := mustLoad(t, dir).Resolve(q)
		if err == nil || !strings.Contains(err.Error(), "overlays a and b (both specificity 1) set components.nvbind.version differently") {
			t.Fatalf("Resolve error = %v, want the conflict", err)
		}
	})
	t.Run("a leaf against a map is a conflict too", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{
			"a.yaml": head + "name: a\ncriteria: {service: eks}\ncomponents: {nvbind: {values: {cdi: off}}}\n",
			"b.yaml": head + "name: b\ncriteria: {intent: training}\ncomponents: {nvbind: {values: {cdi: {specDir: /etc/cdi}}}}\n",
		})
		_, err := mustLoad(t, dir).Resolve(q)
		if err == nil || !strings.Contains(err.Error(), "components.nvbind.values.cdi") {
			t.Fatalf("Resolve error = %v, want a conflict at components.nvbind.values.cdi", err)
		}
	})
	t.Run("same value twice is no conflict", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{
			"a.yaml": head + "name: a\ncriteria: {service: eks}\ncomponents: {nvbind: {version: 0.2.0}}\n",
			"b.yaml": head + "name: b\ncriteria: {intent: training}\ncomponents: {nvbind: {version: 0.2.0}}\n",
		})
		if _, err := mustLoad(t, dir).Resolve(q); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("new criteria values", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{
			"criteria.yaml": "apiVersion: nvbind.io/v1alpha1\nkind: Criteria\naccelerator: [rtx-pro-6000]\n",
			"support.yaml":  "apiVersion: nvbind.io/v1alpha1\nkind: Support\ncombinations: [{service: self-managed, accelerator: [rtx-pro-6000], os: [ubuntu], intent: [inference]}]\n",
			"rtx.yaml":      head + "name: rtx-pro-6000\ncriteria: {accelerator: rtx-pro-6000}\nconstraints: {GPU.smi.gpu.model: {value: '=~ RTX PRO 6000', required: true}}\n",
		})
		res, err := mustLoad(t, dir).Resolve(Query{Service: "self-managed", Accelerator: "rtx-pro-6000", Intent: "inference"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Recipe.Constraints["GPU.smi.gpu.model"].Source != "rtx-pro-6000" {
			t.Errorf("constraints = %+v", res.Recipe.Constraints)
		}
	})
	t.Run("not a directory", func(t *testing.T) {
		if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
			t.Fatal("Load of a missing directory succeeded")
		}
	})
}

func TestQueryErrors(t *testing.T) {
	c := mustLoad(t, "")
	tests := []struct {
		q    Query
		want string
	}{
		{Query{Accelerator: "h100", Intent: "training"}, "--service is required"},
		{Query{Service: "eks", Intent: "training"}, "--accelerator is required"},
		{Query{Service: "eks", Accelerator: "h100"}, "--intent is required"},
		{Query{Service: "eks", Accelerator: "h800", Intent: "training"}, `--accelerator "h800" is not one of h100, h200, gb200, b200, a100, l40s`},
		{Query{Service: "eks", Accelerator: "h100", Intent: "training", OS: "windows"}, `--os "windows"`},
		{Query{Service: "eks", Accelerator: "h100", Intent: "training", Nodes: -1}, "--nodes must not be negative"},
	}
	for _, tt := range tests {
		if _, err := c.Resolve(tt.q); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Resolve(%+v) error = %v, want %q", tt.q, err, tt.want)
		}
	}
}
