package recipes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseNCCL(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "nccl", "eks-h100-pass.log"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := ParseNCCL(data)
	if err != nil {
		t.Fatal(err)
	}
	// The largest size's out-of-place busbw, not the in-place one (339.28)
	// nor the "Avg bus bandwidth" line.
	if res.MaxBytes != 17179869184 || res.BusBW != 338.6 || res.Ranks != 16 || res.Nodes != 2 || res.Wrong != 0 || res.Rows != 32 {
		t.Errorf("pass log = %+v", res)
	}
	fail, err := os.ReadFile(filepath.Join("testdata", "nccl", "eks-h100-fail.log"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := ParseNCCL(fail); err != nil || res.BusBW != 184.2 || res.Nodes != 2 {
		t.Errorf("fail log (NCCL INFO lines between) = %+v, %v", res, err)
	}

	// nccl-tests before 2.10 had no root column, and wrote "error" where
	// #wrong is now; rows may come in any order.
	old := `#  Rank  0 Pid   1 on node-a device  0 [0x1b] NVIDIA A100-SXM4-80GB
#  Rank  1 Pid   2 on node-b device  0 [0x1b] NVIDIA A100-SXM4-80GB
#
#                                                     out-of-place                       in-place
#       size         count    type   redop     time   algbw   busbw  error     time   algbw   busbw  error
#        (B)    (elements)                     (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
  8589934592    2147483648   float     sum    92416   92.95  185.90  2e-07    92319   93.05  186.09  2e-07
     1048576        262144   float     sum    124.4    8.43   16.86  1e-07    123.9    8.46   16.93  1e-07
# Out of bounds values : 3 OK
# Avg bus bandwidth    : 101.38
`
	res, err = ParseNCCL([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if res.MaxBytes != 8589934592 || res.BusBW != 185.90 || res.Nodes != 2 || res.Wrong != 3 {
		t.Errorf("old layout = %+v", res)
	}

	for _, bad := range []string{"", "NCCL INFO x\n", "#       size  count  type redop root time algbw busbw #wrong\n  8  2  float  sum  -1  36.5  0.00  N/A  0\n"} {
		if _, err := ParseNCCL([]byte(bad)); err == nil {
			t.Errorf("ParseNCCL(%q) succeeded", bad)
		}
	}
}

func FuzzParseNCCL(f *testing.F) {
	for _, name := range []string{"eks-h100-pass.log", "eks-h100-one-node.log"} {
		data, err := os.ReadFile(filepath.Join("testdata", "nccl", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("#  size busbw\n1 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ParseNCCL(data)
		if err == nil && (res.Rows == 0 || res.MaxBytes < 0) {
			t.Errorf("accepted output without a row: %+v", res)
		}
	})
}

func TestPerformanceBars(t *testing.T) {
	c := mustLoad(t, "")
	for _, tt := range []struct {
		q      Query
		fabric string
		bar    float64
	}{
		{Query{Service: "eks", Accelerator: "h100", Intent: "training"}, "efa", 300},
		{Query{Service: "eks", Accelerator: "h200", OS: "amazonlinux", Intent: "training"}, "efa", 300},
		{Query{Service: "gke", Accelerator: "h100", Intent: "training"}, "tcpxo", 250},
		{Query{Service: "aks", Accelerator: "h100", Intent: "training"}, "infiniband", 300},
		{Query{Service: "oke", Accelerator: "h100", Intent: "training"}, "roce", 300},
		{Query{Service: "gke", Accelerator: "gb200", Intent: "training"}, "", 0},
		{Query{Service: "eks", Accelerator: "h100", Intent: "inference"}, "", 0},
	} {
		res, err := c.Resolve(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		r := res.Recipe
		got := 0.0
		if r.Performance != nil {
			got = r.Performance.MinBusBandwidth
		}
		if r.Fabric != tt.fabric || got != tt.bar {
			t.Errorf("%s: fabric %q bar %v, want %q %v", r.Name, r.Fabric, got, tt.fabric, tt.bar)
		}
	}
}

func TestDeriveQuery(t *testing.T) {
	for _, tt := range []struct {
		file string
		want Query
		k8s  string
	}{
		{"h100.yaml", Query{Service: "eks", Accelerator: "h100", OS: "ubuntu"}, "v1.30.14-eks-3025e55"},
		{"gb200.yaml", Query{Service: "eks", Accelerator: "gb200", OS: "ubuntu"}, "v1.34.2-eks-b3126f4"},
	} {
		q, ders := DeriveQuery(readSnapshotFile(t, tt.file))
		if q != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.file, q, tt.want)
		}
		byName := map[string]Derivation{}
		for _, d := range ders {
			byName[d.Criterion] = d
		}
		if byName["kubernetes"].Value != tt.k8s || byName["intent"].Value != "" || byName["intent"].Why == "" {
			t.Errorf("%s: derivations %+v", tt.file, ders)
		}
	}
	// Fallbacks: the providerID, then the version's provider build; models
	// and OSes without recipes are named.
	s := factsSnapshot(nodeFacts{k8s: "v1.33.5-gke.1080000", osID: "cos", model: "NVIDIA GB200", kernel: "6.6.93+"})
	s.Set("K8s", "node", "provider", nil)
	if q, _ := DeriveQuery(s); q.Service != "gke" || q.Accelerator != "gb200" || q.OS != "cos" {
		t.Errorf("gke from version: %+v", q)
	}
	s.Set("K8s", "node", "provider-id", "azure:///subscriptions/x")
	if q, _ := DeriveQuery(s); q.Service != "aks" {
		t.Errorf("aks from provider-id: %+v", q)
	}
	s = factsSnapshot(nodeFacts{k8s: "v1.34.1", osID: "debian", model: "NVIDIA L4"})
	q, ders := DeriveQuery(s)
	if q.Service != "" || q.Accelerator != "" || q.OS != "" {
		t.Errorf("unknown node derived %+v", q)
	}
	for _, d := range ders[:3] {
		if d.Why == "" || d.Value != "" {
			t.Errorf("%s: %+v, want a reason", d.Criterion, d)
		}
	}
	if !strings.Contains(ders[1].Why, `"NVIDIA L4" has no recipes`) || !strings.Contains(ders[2].Why, `"debian" has no recipes`) {
		t.Errorf("reasons: %q %q", ders[1].Why, ders[2].Why)
	}
}

func TestReadClusterDump(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "cluster", "eks-h100-healthy.json"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ReadClusterDump(data, "healthy")
	if err != nil {
		t.Fatal(err)
	}
	if len(cl.Deployments) != 13 || len(cl.DaemonSets) != 11 || len(cl.CRDs) != 9 || len(cl.Nodes) != 3 || len(cl.GPUNodes()) != 2 {
		t.Errorf("dump: %d deployments, %d daemonsets, %d crds, %d nodes (%v GPU)", len(cl.Deployments), len(cl.DaemonSets), len(cl.CRDs), len(cl.Nodes), cl.GPUNodes())
	}
	// Typed lists (kubectl get deployments -o json) carry the kind on the
	// list only; several documents may follow each other.
	typed := `{"kind":"DeploymentList","apiVersion":"apps/v1","items":[{"metadata":{"name":"a","namespace":"n"},"spec":{"replicas":2},"status":{"availableReplicas":1}}]}
{"kind":"NodeList","items":[{"metadata":{"name":"g","labels":{"feature.node.kubernetes.io/pci-10de.present":"true"}},"status":{"allocatable":{"nvidia.com/gpu":"4"}}}]}`
	cl, err = ReadClusterDump([]byte(typed), "typed")
	if err != nil {
		t.Fatal(err)
	}
	if w := cl.Deployments["n/a"]; w.Desired != 2 || w.Ready != 1 || len(cl.GPUNodes()) != 1 {
		t.Errorf("typed lists: %+v %v", cl.Deployments, cl.GPUNodes())
	}
	for _, bad := range []string{"", "[", `{"items":[{}],"kind":"List"}`, `{"kind":"List","items":"x"}`} {
		if _, err := ReadClusterDump([]byte(bad), "bad"); err == nil {
			t.Errorf("ReadClusterDump(%q) succeeded", bad)
		}
	}
}

func TestValidateDeploymentEveryRecipe(t *testing.T) {
	// A dump from an EKS H100 cluster satisfies only the components it runs:
	// other recipes' extra components are reported missing, never skipped.
	data, err := os.ReadFile(filepath.Join("testdata", "cluster", "eks-h100-healthy.json"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ReadClusterDump(data, "healthy")
	if err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, "")
	res, err := c.Resolve(Query{Service: "eks", Accelerator: "h100", OS: "ubuntu", Intent: "inference", Platform: "nim"})
	if err != nil {
		t.Fatal(err)
	}
	rep := ValidateDeployment(res.Recipe, cl)
	failed := []string{}
	for _, ch := range rep.Checks {
		if ch.Status == StatusFailed {
			failed = append(failed, ch.Name)
		}
	}
	want := "nim-operator: Deployment nim-operator/k8s-nim-operator,nim-operator: CRD nimservices.apps.nvidia.com"
	if strings.Join(failed, ",") != want {
		t.Errorf("failed %v, want %s", failed, want)
	}
}

func TestConformanceData(t *testing.T) {
	conf, err := LoadConformance()
	if err != nil {
		t.Fatal(err)
	}
	// The v1.34 list: nine MUST requirements.
	want := "dra_support ai_inference gang_scheduling cluster_autoscaling pod_autoscaling accelerator_metrics ai_service_metrics secure_accelerator_access robust_controller"
	var ids []string
	for _, r := range conf.Requirements {
		ids = append(ids, r.ID)
		if r.Level != "MUST" {
			t.Errorf("%s: level %s", r.ID, r.Level)
		}
	}
	if strings.Join(ids, " ") != want || conf.Version != "v1.34" {
		t.Errorf("requirements %v (%s)", ids, conf.Version)
	}
	c := mustLoad(t, "")
	known := map[string]bool{}
	for _, o := range c.Overlays {
		for name := range o.Components {
			known[name] = true
		}
	}
	for _, r := range conf.Requirements {
		for _, p := range r.ProvidedBy {
			if !known[p] {
				t.Errorf("%s: providedBy %q is no component", r.ID, p)
			}
		}
	}
}

func TestFabricJobBytesStable(t *testing.T) {
	c := mustLoad(t, "")
	for _, q := range coverage(t) {
		res, err := c.Resolve(q)
		if err != nil {
			t.Fatal(err)
		}
		r := res.Recipe
		if r.Fabric == "" || r.Fabric == "infiniband" || r.Fabric == "roce" {
			continue
		}
		a, err := FabricJob(r, FabricJobOptions{})
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		b, _ := FabricJob(r, FabricJobOptions{})
		if string(a) != string(b) {
			t.Errorf("%s: fabric job is not byte-stable", r.Name)
		}
	}
	res, _ := c.Resolve(Query{Service: "aks", Accelerator: "h100", Intent: "training"})
	if _, err := FabricJob(res.Recipe, FabricJobOptions{Image: "x", Nodes: 1}); err == nil || !strings.Contains(err.Error(), "two or more nodes") {
		t.Errorf("one node: %v", err)
	}
}

func TestExplainFabricAndPlatform(t *testing.T) {
	c := mustLoad(t, "")
	res, err := c.Resolve(Query{Service: "gke", Accelerator: "h100", Intent: "training"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := res.Explain(&b, "fabric"); err != nil || b.String() != "fabric = tcpxo  <- gke-h100-training\n" {
		t.Errorf("explain fabric = %q, %v", b.String(), err)
	}
	res, err = c.Resolve(Query{Service: "eks", Accelerator: "h100", Intent: "inference", Platform: "nim"})
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := res.Explain(&b, ""); err != nil || !strings.Contains(b.String(), "inference-nim  intent=inference platform=nim") {
		t.Errorf("explain:\n%s", b.String())
	}
	if _, ok := res.Recipe.Components["kserve"]; ok {
		t.Error("the nim platform also installs kserve")
	}
	if _, err := c.Resolve(Query{Service: "eks", Accelerator: "h100", Intent: "training", Platform: "nim"}); err == nil || !strings.Contains(err.Error(), "applies to --intent inference only") {
		t.Errorf("training with a platform: %v", err)
	}
}
