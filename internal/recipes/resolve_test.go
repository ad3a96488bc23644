package recipes

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestResolveOrderAndProvenance(t *testing.T) {
	c := mustLoad(t, "")
	tests := []struct {
		q        Query
		overlays []string
	}{
		// The OS defaults to the service's first supported one, the serving
		// platform to kserve.
		{Query{Service: "eks", Accelerator: "h100", Intent: "inference"}, []string{"base", "eks", "h100", "inference", "ubuntu", "eks-ubuntu", "inference-kserve"}},
		// Least specific first, ties by name, parents before children.
		{Query{Service: "aks", Accelerator: "gb200", OS: "ubuntu", Intent: "training"},
			[]string{"base", "aks", "gb200", "training", "ubuntu", "aks-training", "gb200-training"}},
		{Query{Service: "eks", Accelerator: "h100", OS: "amazonlinux", Intent: "training", Nodes: 64},
			[]string{"base", "amazonlinux", "eks", "h100", "training", "eks-amazonlinux", "eks-training", "training-large"}},
		// The nodes criterion: 63 nodes is below training-large's bound.
		{Query{Service: "eks", Accelerator: "h100", Intent: "training", Nodes: 63},
			[]string{"base", "eks", "h100", "training", "ubuntu", "eks-training", "eks-ubuntu", "eks-ubuntu-training"}},
	}
	for _, tt := range tests {
		res, err := c.Resolve(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Recipe.Overlays, tt.overlays) {
			t.Errorf("%s: overlays %v, want %v", tt.q.Name(), res.Recipe.Overlays, tt.overlays)
		}
	}

	res, err := c.Resolve(Query{Service: "gke", Accelerator: "gb200", Intent: "training", Nodes: 128})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Recipe
	if r.Name != "gke-gb200-cos-training-n128" {
		t.Errorf("name = %s", r.Name)
	}
	if got := r.Constraints["GPU.smi.gpu-count"]; got.Value != ">= 4" || got.Source != "gb200-training" {
		t.Errorf("gpu-count constraint = %+v, want >= 4 from gb200-training", got)
	}
	if got := valueAt(r.Components["kube-prometheus-stack"].Values, "prometheus.prometheusSpec.retention"); got != "30d" {
		t.Errorf("retention = %v, want training-large's 30d", got)
	}
	// null inside values reaches Helm (it removes a chart default there).
	dra := r.Components["nvidia-dra-driver-gpu"].Values
	if aff, ok := valueAt(dra, "controller.affinity").(map[string]any); !ok || aff["nodeAffinity"] != nil || len(aff) != 1 {
		t.Errorf("dra controller.affinity = %#v, want {nodeAffinity: null}", valueAt(dra, "controller.affinity"))
	}
	if valueAt(dra, "nvidiaDriverRoot") != "/home/kubernetes/bin/nvidia" {
		t.Errorf("dra driver root = %v", valueAt(dra, "nvidiaDriverRoot"))
	}

	var b bytes.Buffer
	if err := res.Explain(&b, "components.kube-prometheus-stack.values.prometheus.prometheusSpec.retention"); err != nil {
		t.Fatal(err)
	}
	if want := "components.kube-prometheus-stack.values.prometheus.prometheusSpec.retention = 30d  <- training-large (over base: 15d)\n"; b.String() != want {
		t.Errorf("explain:\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := res.Explain(&b, "components.gpu-operator.values.driver"); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"components.gpu-operator.values.driver.enabled = false  <- gke (over base: true)\n",
		"components.gpu-operator.values.driver.version = 580.105.08  <- base\n",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("explain lacks %q:\n%s", line, b.String())
		}
	}
	if err := res.Explain(&b, "components.nope"); err == nil {
		t.Error("explain of a missing path succeeded")
	}
	b.Reset()
	if err := res.Explain(&b, ""); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`\n  training-large +intent=training nodes>=64 +embedded:overlays/training-large.yaml\n`).MatchString(b.String()) {
		t.Errorf("explain does not list the applied overlays:\n%s", b.String())
	}
}

func TestDisabledComponents(t *testing.T) {
	c := mustLoad(t, "")
	res, err := c.Resolve(Query{Service: "gke", Accelerator: "h100", Intent: "inference"})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Recipe
	for _, name := range []string{"network-operator", "skyhook-operator", "skyhook-customizations", "nvidia-dra-driver-gpu", "nim-operator"} {
		if _, ok := r.Components[name]; ok {
			t.Errorf("disabled %s is in the recipe", name)
		}
	}
	if deps := r.Components["gpu-operator"].DependsOn; !slices.Equal(deps, []string{"kube-prometheus-stack", "nvbind"}) {
		t.Errorf("gpu-operator dependsOn %v: a disabled dependency must drop out", deps)
	}
	res, err = c.Resolve(Query{Service: "oke", Accelerator: "h100", Intent: "training"})
	if err != nil {
		t.Fatal(err)
	}
	if deps := res.Recipe.Components["gpu-operator"].DependsOn; !slices.Contains(deps, "network-operator") {
		t.Errorf("gpu-operator dependsOn %v, want network-operator where it is enabled", deps)
	}
}

func TestDeploymentOrder(t *testing.T) {
	comp := func(deps ...string) Component { return Component{DependsOn: deps} }
	order, err := DeploymentOrder(map[string]Component{
		"d": comp("b", "c"), "c": comp("a"), "b": comp("a"), "a": comp(), "e": comp(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c", "d", "e"}; !slices.Equal(order, want) {
		t.Errorf("order = %v, want %v", order, want)
	}
	if _, err := DeploymentOrder(map[string]Component{"a": comp("b"), "b": comp("c"), "c": comp("a"), "x": comp()}); err == nil || err.Error() != "dependency cycle among a, b, c" {
		t.Errorf("cycle error = %v", err)
	}
	if _, err := DeploymentOrder(map[string]Component{"a": comp("zz")}); err == nil || !strings.Contains(err.Error(), `depends on "zz"`) {
		t.Errorf("missing dependency error = %v", err)
	}
	r := &Recipe{Components: map[string]Component{"d": comp("b", "c"), "c": comp("b"), "b": comp("a"), "a": comp()}, DeploymentOrder: []string{"a", "b", "c", "d"}}
	if w := Waves(r); w["a"] != 0 || w["b"] != 1 || w["c"] != 2 || w["d"] != 3 {
		t.Errorf("waves = %v", w)
	}
}

func TestReadRecipeErrors(t *testing.T) {
	good := string(encodeRecipe(t, Query{Service: "eks", Accelerator: "h100", Intent: "training"}))
	for _, tt := range []struct {
		doc, want string
	}{
		{"kind: Snapshot\n", `kind is "Snapshot"`},
		{"kind: Recipe\napiVersion: v9\n", `apiVersion is "v9"`},
		{strings.Replace(good, "kind: Recipe", "kind: Recipe\nextra: 1", 1), `unknown field "extra"`},
		{strings.Replace(good, "    version: v25.10.1\n", "", 1), "component gpu-operator: version is empty"},
		{strings.Replace(good, "    - nvbind\n", "    - nvbind\n    - ghost\n", 1), `depends on "ghost"`},
		{strings.Replace(good, "value: '>= 1.30'", "value: '>= soon'", 1), "constraint K8s.server.version"},
		{strings.Replace(good, "repository: https://charts.jetstack.io", "repository: file:///etc", 1), "must start with https:// or oci://"},
		{strings.Replace(good, "    version: v1.17.2", "    version: v1.17.2; rm -rf /", 1), "characters a chart version cannot have"},
	} {
		if _, err := ReadRecipe([]byte(tt.doc)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadRecipe error = %v, want %q", err, tt.want)
		}
	}
	r, err := ReadRecipe([]byte(strings.Replace(good, "deploymentOrder:\n- aws-ebs-csi-driver\n", "deploymentOrder:\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if r.DeploymentOrder[0] != "aws-ebs-csi-driver" {
		t.Errorf("deployment order not recomputed: %v", r.DeploymentOrder)
	}
}
