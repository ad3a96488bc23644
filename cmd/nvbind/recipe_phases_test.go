package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8sversion "k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/recipes"
	"github.com/nvbind/nvbind/internal/recipes/kube"
	"github.com/nvbind/nvbind/internal/recipes/snapshot"
)

const (
	testdata    = "../../internal/recipes/testdata/"
	healthyDump = testdata + "cluster/eks-h100-healthy.json"
	brokenDump  = testdata + "cluster/eks-h100-broken.json"
)

// fakeCluster makes connectKube return fake clients over objs for the
// test's duration, and returns the core fake for inspection.
func fakeCluster(t *testing.T, objs ...runtime.Object) *fake.Clientset {
	t.Helper()
	core := fake.NewClientset(objs...)
	core.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &k8sversion.Info{GitVersion: "v1.33.5-eks-3025e55"}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}: "CustomResourceDefinitionList"})
	old := connectKube
	t.Cleanup(func() { connectKube = old })
	connectKube = func(string, bool) (*kube.Clients, error) {
		return &kube.Clients{Core: core, Dynamic: dyn, Source: "fake"}, nil
	}
	return core
}

func TestRenderFromSnapshot(t *testing.T) {
	for _, tt := range []struct {
		snapshot, name string
		derived        []string
	}{
		{"../../../shared/aicr-snapshots/h100.yaml", "eks-h100-ubuntu-training", []string{
			"service      eks                    derived from K8s.node.provider = eks",
			"accelerator  h100                   derived from GPU.smi.gpu.model = NVIDIA H100 80GB HBM3",
			"os           ubuntu                 derived from OS.release.ID = ubuntu",
			"kubernetes   v1.30.14-eks-3025e55   derived from K8s.server.version",
			"intent       training               from --intent",
		}},
		{"../../../shared/aicr-snapshots/gb200.yaml", "eks-gb200-ubuntu-training", []string{
			"accelerator  gb200                  derived from GPU.smi.gpu.model = NVIDIA GB200",
			"kubernetes   v1.34.2-eks-b3126f4    derived from K8s.server.version",
		}},
	} {
		snap := tt.snapshot
		if _, err := os.Stat(snap); err != nil {
			snap = testdata + "aicr/" + filepath.Base(snap) // the same files, kept beside the tests
		}
		code, out, errs := cli(t, recipeCmd, "render", "--snapshot", snap, "--intent", "training")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", snap, code, errs)
		}
		r, err := recipes.ReadRecipe([]byte(out))
		if err != nil || r.Name != tt.name {
			t.Errorf("%s: recipe %v %v, want %s", snap, r, err, tt.name)
		}
		for _, line := range tt.derived {
			if !strings.Contains(errs, line) {
				t.Errorf("%s: stderr lacks %q:\n%s", snap, line, errs)
			}
		}
		// The derived recipe validates against the snapshot it came from.
		p := filepath.Join(t.TempDir(), "r.yaml")
		os.WriteFile(p, []byte(out), 0o644)
		if code, out, _ := cli(t, recipeCmd, "validate", "--recipe", p, "--snapshot", snap); code != 0 {
			t.Errorf("%s: derived recipe does not validate:\n%s", snap, out)
		}
	}

	// Without --intent: what was derived, what not, then the error.
	code, out, errs := cli(t, recipeCmd, "render", "--snapshot", testdata+"aicr/h100.yaml")
	if code != 2 || out != "" {
		t.Errorf("no intent: exit %d", code)
	}
	for _, want := range []string{
		"intent       -                      not derived: a snapshot does not say what the cluster is for; pass --intent training or inference",
		"nvbind: recipe render: --intent is required (one of training, inference)\n",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	// A flag wins over the snapshot, and says what the snapshot said.
	code, _, errs = cli(t, recipeCmd, "render", "--snapshot", testdata+"aicr/h100.yaml", "--intent", "inference", "--os", "amazonlinux")
	if code != 0 || !strings.Contains(errs, "os           amazonlinux            from --os (the snapshot says ubuntu: OS.release.ID = ubuntu)") {
		t.Errorf("override: exit %d\n%s", code, errs)
	}
	// A snapshot without a provider: the service is not derived.
	noProvider := filepath.Join(t.TempDir(), "node.yaml")
	os.WriteFile(noProvider, []byte("kind: Snapshot\napiVersion: aicr.nvidia.com/v1alpha1\nmeasurements:\n- type: GPU\n  subtypes:\n  - subtype: smi\n    data: {gpu.model: NVIDIA L40S}\n"), 0o644)
	code, _, errs = cli(t, recipeCmd, "render", "--snapshot", noProvider, "--intent", "inference")
	if code != 2 || !strings.Contains(errs, "service      -                      not derived: no K8s.node.provider") || !strings.Contains(errs, "--service is required") {
		t.Errorf("no provider: exit %d\n%s", code, errs)
	}
	code, _, errs = cli(t, recipeCmd, "render", "--snapshot", noProvider, "--intent", "inference", "--service", "self-managed")
	if code != 0 || !strings.Contains(errs, "accelerator  l40s") {
		t.Errorf("no provider with --service: exit %d\n%s", code, errs)
	}
}

func TestRenderUnsupported(t *testing.T) {
	code, out, errs := cli(t, recipeCmd, "render", "--service", "gke", "--accelerator", "h100", "--os", "rhel", "--intent", "training")
	if code != 2 || out != "" {
		t.Errorf("exit %d", code)
	}
	oneLine(t, errs, "gke + h100 + rhel + training is not a supported combination; nearest supported: gke-h100-cos-training")
}

func TestValidateDeploymentDumps(t *testing.T) {
	rec := renderTo(t, t.TempDir(), "--service", "eks", "--accelerator", "h100", "--intent", "training")
	code, out, errs := cli(t, recipeCmd, "validate", "--phase", "deployment", "--recipe", rec, "--cluster-dump", healthyDump)
	if code != 0 || !strings.Contains(out, "deployment eks-h100-ubuntu-training: 19 passed, 0 failed, 0 skipped") {
		t.Errorf("healthy: exit %d %s\n%s", code, errs, out)
	}
	code, out, _ = cli(t, recipeCmd, "validate", "--phase", "deployment", "--recipe", rec, "--cluster-dump", brokenDump)
	if code != 1 {
		t.Errorf("broken: exit %d", code)
	}
	for _, want := range []string{
		"failed   gpu-operator: Deployment gpu-operator/gpu-operator",
		"  fix: kubectl -n gpu-operator describe deployment gpu-operator;",
		"failed gpu-operator: DaemonSet gpu-operator/nvidia-device-plugin-daemonset ready on 2 GPU nodes 1/2 ready gpu-operator 1 of 2 pods ready",
		"failed   gpu-operator: Resource nvidia.com/gpu",
		"not allocatable on ip-10-0-158-41.ec2.internal",
		"failed   aws-efa: DaemonSet kube-system/aws-efa-k8s-device-plugin",
		"scheduled on 1 nodes, fewer than the 2 GPU nodes",
		"failed   kai-scheduler: CRD queues.scheduling.run.ai",
		"failed   gpu-operator: CRD clusterpolicies.nvidia.com",
		"deployment eks-h100-ubuntu-training: 13 passed, 6 failed, 0 skipped",
	} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("broken report lacks %q:\n%s", want, out)
		}
	}
	// Every failure has its fix under it.
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "failed") && (i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "  fix: ")) {
			t.Errorf("no fix under %q", l)
		}
	}

	// JUnit and CTRF carry the remediation too.
	_, out, _ = cli(t, recipeCmd, "validate", "--phase", "deployment", "--recipe", rec, "--cluster-dump", brokenDump, "--format", "junit")
	var suites struct {
		Suites []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Text string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(out), &suites); err != nil {
		t.Fatal(err)
	}
	fails := 0
	for _, c := range suites.Suites[0].Cases {
		if c.Failure != nil {
			fails++
			if !strings.Contains(c.Failure.Text, "\nremediation: ") {
				t.Errorf("junit failure %s has no remediation: %q", c.Name, c.Failure.Text)
			}
		}
	}
	if fails != 6 {
		t.Errorf("junit: %d failures, want 6", fails)
	}
	_, out, _ = cli(t, recipeCmd, "validate", "--phase", "deployment", "--recipe", rec, "--cluster-dump", brokenDump, "--format", "ctrf")
	var ctrf struct {
		Results struct {
			Summary struct{ Tests, Failed int }
			Tests   []struct {
				Name, Status string
				Extra        map[string]string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &ctrf); err != nil || ctrf.Results.Summary.Failed != 6 || ctrf.Results.Summary.Tests != 19 {
		t.Errorf("ctrf: %v %+v", err, ctrf.Results.Summary)
	}
	for _, tc := range ctrf.Results.Tests {
		if tc.Status == "failed" && tc.Extra["remediation"] == "" {
			t.Errorf("ctrf failure %s has no remediation", tc.Name)
		}
	}

	bad := filepath.Join(t.TempDir(), "dump.json")
	os.WriteFile(bad, []byte("{\"items\": [{}], \"kind\": \"List\"}"), 0o644)
	code, _, errs = cli(t, recipeCmd, "validate", "--phase", "deployment", "--recipe", rec, "--cluster-dump", bad)
	if code != 2 {
		t.Errorf("bad dump: exit %d", code)
	}
	oneLine(t, errs, "an object has no kind")
}

func TestValidateDeploymentLive(t *testing.T) {
	rec := renderTo(t, t.TempDir(), "--service", "eks", "--accelerator", "h100", "--intent", "training")
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "gpu-1", Labels: map[string]string{"nvidia.com/gpu.present": "true"}},
		Status:     corev1.NodeStatus{Allocatable: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("8")}},
	}
	fakeCluster(t, node)
	code, out, _ := cli(t, recipeCmd, "validate", "--phase", "deployment", "--recipe", rec, "--kubeconfig", "fake")
	flat := strings.Join(strings.Fields(out), " ")
	if code != 1 || !strings.Contains(flat, "failed cert-manager: Deployment cert-manager/cert-manager available - cert-manager not found") ||
		!strings.Contains(flat, "passed gpu-operator: Resource nvidia.com/gpu allocatable on every GPU node 8 on 1 nodes") {
		t.Errorf("empty live cluster: exit %d\n%s", code, out)
	}
}

func TestValidatePerformance(t *testing.T) {
	dir := t.TempDir()
	rec := renderTo(t, dir, "--service", "eks", "--accelerator", "h100", "--intent", "training")
	for _, tt := range []struct {
		log  string
		code int
		want []string
	}{
		{"eks-h100-pass.log", 0, []string{
			"passed   nccl-all-reduce-bw  >= 270 GB/s (300 less 10%)  338.6 GB/s at 16 GiB",
			"performance eks-h100-ubuntu-training: 3 passed, 0 failed, 0 skipped"}},
		{"eks-h100-fail.log", 1, []string{
			"failed   nccl-all-reduce-bw  >= 270 GB/s (300 less 10%)  184.2 GB/s at 16 GiB",
			"out-of-place busbw 184.2 GB/s is below 270 GB/s",
			"  fix: Check that every pod of the job got all 32 EFA interfaces"}},
		{"eks-h100-one-node.log", 1, []string{
			"passed   nccl-all-reduce-bw",
			"failed   nccl-nodes",
			"ran on 1 node(s) (8 ranks)",
			"  fix: Run the test across at least 2 GPU nodes"}},
	} {
		code, out, errs := cli(t, recipeCmd, "validate", "--phase", "performance", "--recipe", rec, "--nccl-log", testdata+"nccl/"+tt.log)
		if code != tt.code {
			t.Errorf("%s: exit %d, want %d: %s\n%s", tt.log, code, tt.code, errs, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(w), " ")) {
				t.Errorf("%s: report lacks %q:\n%s", tt.log, w, out)
			}
		}
	}
	// An inference recipe has no fabric: skipped, saying why.
	inf := filepath.Join(dir, "inf.yaml")
	if code, _, errs := cli(t, recipeCmd, "render", "--service", "eks", "--accelerator", "h100", "--intent", "inference", "-o", inf); code != 0 {
		t.Fatal(errs)
	}
	code, out, _ := cli(t, recipeCmd, "validate", "--phase", "performance", "--recipe", inf, "--nccl-log", testdata+"nccl/eks-h100-pass.log")
	if code != 0 || !strings.Contains(strings.Join(strings.Fields(out), " "), "skipped nccl-all-reduce-bw") || !strings.Contains(out, "the recipe sets no inter-node fabric") {
		t.Errorf("inference: exit %d\n%s", code, out)
	}
	notLog := filepath.Join(dir, "x.log")
	os.WriteFile(notLog, []byte("NCCL INFO only\n"), 0o644)
	code, _, errs := cli(t, recipeCmd, "validate", "--phase", "performance", "--recipe", rec, "--nccl-log", notLog)
	if code != 2 {
		t.Errorf("not a log: exit %d", code)
	}
	oneLine(t, errs, "no result table")
}

func TestValidateConformance(t *testing.T) {
	rec := renderTo(t, t.TempDir(), "--service", "eks", "--accelerator", "gb200", "--intent", "training")
	ev := t.TempDir()
	os.WriteFile(filepath.Join(ev, "gang_scheduling.txt"), []byte("podgroup scheduled all-or-nothing\n"), 0o644)
	os.WriteFile(filepath.Join(ev, "accelerator_metrics.txt"), []byte("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 97\n"), 0o644)
	os.WriteFile(filepath.Join(ev, "pod_autoscaling.md"), nil, 0o644) // empty: no evidence
	os.MkdirAll(filepath.Join(ev, "dra_support"), 0o755)
	os.WriteFile(filepath.Join(ev, "dra_support", "resourceslices.txt"), []byte("gpu-1 compute-domain.nvidia.com\n"), 0o644)
	code, out, _ := cli(t, recipeCmd, "validate", "--phase", "conformance", "--recipe", rec, "--evidence-dir", ev)
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{
		"passed   dra_support                evidence (MUST)  dra_support/",
		"nvidia-dra-driver-gpu",
		"passed   gang_scheduling",
		"kai-scheduler",
		"failed   ai_inference",
		"AI inference: no evidence; no component of the recipe provides it",
		"failed   pod_autoscaling",
		"  fix: Expose a GPU metric to the custom metrics API",
		"conformance eks-gb200-ubuntu-training: 3 passed, 6 failed, 0 skipped",
	} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	code, _, errs := cli(t, recipeCmd, "validate", "--phase", "conformance", "--recipe", rec, "--evidence-dir", filepath.Join(ev, "missing"))
	if code != 2 {
		t.Errorf("missing dir: exit %d", code)
	}
	oneLine(t, errs, "evidence directory")
}

func TestFabricJobCLI(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--service", "eks", "--accelerator", "h100", "--intent", "training"}, []string{
			"kind: MPIJob", "vpc.amazonaws.com/efa: \"32\"", "nvidia.com/gpu: \"8\"", "- -e\n            - 16G\n",
			"FI_PROVIDER", "runtimeClassName: nvbind", "replicas: 2", "- \"16\"",
		}},
		{[]string{"--service", "gke", "--accelerator", "h100", "--intent", "training"}, []string{
			"networking.gke.io/interfaces", "path: /home/kubernetes/bin/nvidia/lib64", "- 8G", "NCCL_FASTRAK_IFNAME",
		}},
	} {
		rec := filepath.Join(dir, "r.yaml")
		if code, _, errs := cli(t, recipeCmd, append([]string{"render", "-o", rec}, tt.args...)...); code != 0 {
			t.Fatal(errs)
		}
		code, out, errs := cli(t, recipeCmd, "fabric-job", "--recipe", rec)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tt.args, code, errs)
		}
		var job map[string]any
		if err := yaml.Unmarshal([]byte(out), &job); err != nil || job["kind"] != "MPIJob" {
			t.Errorf("%v: not an MPIJob: %v", tt.args, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: job lacks %q:\n%s", tt.args, w, out)
			}
		}
		again, _, _ := cli(t, recipeCmd, "fabric-job", "--recipe", rec)
		if again != code {
			t.Error("unstable")
		}
	}
	rec := filepath.Join(dir, "sm.yaml")
	cli(t, recipeCmd, "render", "-o", rec, "--service", "self-managed", "--accelerator", "h100", "--intent", "training")
	code, _, errs := cli(t, recipeCmd, "fabric-job", "--recipe", rec)
	if code != 2 {
		t.Errorf("infiniband without --image: exit %d", code)
	}
	oneLine(t, errs, "no default nccl-tests image for fabric infiniband: pass --image")
	if code, out, _ := cli(t, recipeCmd, "fabric-job", "--recipe", rec, "--image", "registry.example/nccl-tests:2.16", "--nodes", "4"); code != 0 ||
		!strings.Contains(out, "rdma/rdma_shared_device_a") || !strings.Contains(out, "replicas: 4") || !strings.Contains(out, "IPC_LOCK") {
		t.Errorf("infiniband job: exit %d\n%s", code, out)
	}
	inf := filepath.Join(dir, "inf.yaml")
	cli(t, recipeCmd, "render", "-o", inf, "--service", "eks", "--accelerator", "h100", "--intent", "inference")
	code, _, errs = cli(t, recipeCmd, "fabric-job", "--recipe", inf)
	if code != 2 {
		t.Errorf("inference: exit %d", code)
	}
	oneLine(t, errs, "sets up no inter-node fabric")
}

func TestSnapshotClusterView(t *testing.T) {
	t.Setenv("NVBIND_CONFIG", filepath.Join(t.TempDir(), "none.toml"))
	old := nvmlFor
	t.Cleanup(func() { nvmlFor = old })
	nvmlFor = func(string) gpu.NVMLSource { return nil }
	core := fakeCluster(t, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-158-18.ec2.internal", Labels: map[string]string{"nvidia.com/gpu.present": "true"}},
		Spec:       corev1.NodeSpec{ProviderID: "aws:///us-east-1e/i-0861d1808b85e90ca"},
	})
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=ubuntu\nVERSION_ID=\"24.04\"\n"), 0o644)
	noDriver := filepath.Join(t.TempDir(), "none")

	code, out, errs := cli(t, func(a []string, o, e io.Writer) int { return snapshotCmd(a, snapshot.Options{}, o, e) },
		"--root", root, "--driver-root", noDriver, "--kubeconfig", "fake", "--to-configmap", "gpu-check/node-1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	s, err := recipes.ReadSnapshot([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"K8s.node.provider": "eks", "K8s.server.version": "v1.33.5-eks-3025e55", "OS.release.ID": "ubuntu",
		"K8s.labels.nvidia.com/gpu.present": "true",
	} {
		if got, _ := s.Lookup(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if !strings.Contains(errs, "snapshot stored in configmap gpu-check/node-1") {
		t.Errorf("stderr = %q", errs)
	}
	// The stored snapshot is what cm:// reads, for validate and render.
	cm, err := core.CoreV1().ConfigMaps("gpu-check").Get(context.Background(), "node-1", metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data["snapshot.yaml"], "provider: eks") {
		t.Fatalf("configmap: %v", err)
	}
	rec := renderTo(t, t.TempDir(), "--service", "gke", "--accelerator", "h100", "--intent", "training")
	code, out, _ = cli(t, recipeCmd, "validate", "--recipe", rec, "--snapshot", "cm://gpu-check/node-1", "--kubeconfig", "fake")
	if code != 1 || !strings.Contains(strings.Join(strings.Fields(out), " "), "failed K8s.node.provider == gke eks") {
		t.Errorf("cm:// validate: exit %d\n%s", code, out)
	}
	code, _, errs = cli(t, recipeCmd, "render", "--snapshot", "cm://gpu-check/node-1", "--intent", "training", "--accelerator", "h100")
	if code != 0 || !strings.Contains(errs, "service      eks                    derived from K8s.node.provider = eks") {
		t.Errorf("cm:// render: exit %d\n%s", code, errs)
	}
	code, _, errs = cli(t, recipeCmd, "validate", "--recipe", rec, "--snapshot", "cm://gpu-check/nope")
	if code != 2 {
		t.Errorf("missing configmap: exit %d", code)
	}
	oneLine(t, errs, `configmaps "nope" not found`)

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--to-configmap", "a/b"}, "need --kubeconfig or --in-cluster"},
		{[]string{"--kubeconfig", "k", "--in-cluster"}, "exclude each other"},
		{[]string{"--kubeconfig", "k", "--to-configmap", "nons"}, "want NAMESPACE/NAME"},
	} {
		code, _, errs := cli(t, func(a []string, o, e io.Writer) int { return snapshotCmd(a, snapshot.Options{}, o, e) }, tt.args...)
		if code != 2 {
			t.Errorf("%v: exit %d", tt.args, code)
		}
		oneLine(t, errs, tt.want)
	}
}

func TestSnapshotJobCLI(t *testing.T) {
	code, out, errs := cli(t, func(a []string, o, e io.Writer) int { return snapshotCmd(a, snapshot.Options{}, o, e) },
		"job", "--namespace", "gpu-check", "--name", "node-1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	kinds := map[string]map[string]any{}
	for _, doc := range strings.Split(out, "\n---\n") {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		if k, ok := o["kind"].(string); ok {
			kinds[k] = o
		}
	}
	for _, k := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Job"} {
		if kinds[k] == nil {
			t.Errorf("no %s in:\n%s", k, out)
		}
	}
	for _, want := range []string{
		"- --to-configmap\n        - gpu-check/node-1", "nvidia.com/gpu.present: \"true\"", "path: /", "mountPath: /host",
		"fieldPath: spec.nodeName", "resourceNames:\n  - node-1", "--snapshot cm://gpu-check/node-1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("job lacks %q:\n%s", want, out)
		}
	}
	code, _, errs = cli(t, func(a []string, o, e io.Writer) int { return snapshotCmd(a, snapshot.Options{}, o, e) }, "job", "--name", "Bad_Name")
	if code != 2 {
		t.Errorf("bad name: exit %d", code)
	}
	oneLine(t, errs, `--name "Bad_Name" is not a Kubernetes name`)
}
