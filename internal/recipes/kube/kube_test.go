package kube

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/nvbind/nvbind/internal/recipes"
)

func gpuNode(name, providerID string, labels map[string]string, gpus string) *corev1.Node {
	l := map[string]string{"nvidia.com/gpu.present": "true", "kubernetes.io/hostname": name}
	for k, v := range labels {
		l[k] = v
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
		Spec:       corev1.NodeSpec{ProviderID: providerID},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse(gpus), corev1.ResourceCPU: resource.MustParse("192")},
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion: "v1.33.5-eks-3025e55", KernelVersion: "6.8.0-1024-aws", OSImage: "Ubuntu 24.04.3 LTS",
				ContainerRuntimeVersion: "containerd://1.7.27", OperatingSystem: "linux", Architecture: "amd64",
			},
		},
	}
}

func deployment(ns, name, image string, replicas, available int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}},
		},
		Status: appsv1.DeploymentStatus{AvailableReplicas: available},
	}
}

func daemonSet(ns, name, image string, desired, ready int32) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}},
		Status:     appsv1.DaemonSetStatus{DesiredNumberScheduled: desired, NumberReady: ready},
	}
}

func crd(name string, established bool) *unstructured.Unstructured {
	status := "False"
	if established {
		status = "True"
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": name},
		"status":   map[string]any{"conditions": []any{map[string]any{"type": "Established", "status": status}}},
	}}
}

func clients(objs []runtime.Object, crds ...runtime.Object) *Clients {
	core := fake.NewClientset(objs...)
	core.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1.33.5-eks-3025e55", GoVersion: "go1.24.9", Platform: "linux/amd64"}
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme,
		map[schema.GroupVersionResource]string{crdGVR: "CustomResourceDefinitionList"}, crds...)
	return &Clients{Core: core, Dynamic: dyn, Source: "test-context"}
}

func TestProvider(t *testing.T) {
	for _, tt := range []struct {
		id     string
		labels map[string]string
		want   string
	}{
		{"aws:///us-east-1e/i-0861d1808b85e90ca", nil, "eks"},
		{"gce://proj/us-central1-a/gke-pool-1", nil, "gke"},
		{"azure:///subscriptions/0/resourceGroups/mc/providers/Microsoft.Compute/virtualMachineScaleSets/aks/virtualMachines/0", nil, "aks"},
		{"ocid1.instance.oc1.iad.anuwcljt", nil, "oke"},
		{"", map[string]string{"cloud.google.com/gke-nodepool": "a3"}, "gke"},
		{"", map[string]string{"eks.amazonaws.com/nodegroup": "gpu"}, "eks"},
		{"kind://docker/kind/kind-worker", nil, ""},
		{"", nil, ""},
	} {
		n := gpuNode("n", tt.id, tt.labels, "8")
		if got := Provider(n); got != tt.want {
			t.Errorf("Provider(%q, %v) = %q, want %q", tt.id, tt.labels, got, tt.want)
		}
	}
}

func TestAddClusterView(t *testing.T) {
	c := clients([]runtime.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a-system", Labels: map[string]string{"role": "system"}}},
		gpuNode("ip-10-0-158-18.ec2.internal", "aws:///us-east-1e/i-0861d1808b85e90ca", map[string]string{"eks.amazonaws.com/nodegroup": "gpu"}, "8"),
		deployment("gpu-operator", "gpu-operator", "nvcr.io/nvidia/gpu-operator:v25.10.1", 1, 1),
		daemonSet("kube-system", "aws-efa-k8s-device-plugin", "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/aws-efa-k8s-device-plugin:v0.5.3", 2, 2),
		daemonSet("kube-system", "pinned", "registry.k8s.io/pause@sha256:abc", 1, 1),
	})
	s := &recipes.Snapshot{Kind: recipes.KindSnapshot}
	AddClusterView(context.Background(), c, s, "")
	for name, want := range map[string]string{
		"K8s.server.version":                          "v1.33.5-eks-3025e55",
		"K8s.node.provider":                           "eks",
		"K8s.node.provider-id":                        "aws:///us-east-1e/i-0861d1808b85e90ca",
		"K8s.node.source-node":                        "ip-10-0-158-18.ec2.internal",
		"K8s.node.container-runtime-name":             "containerd",
		"K8s.node.container-runtime-version":          "1.7.27",
		"K8s.node.kernel-version":                     "6.8.0-1024-aws",
		"K8s.labels.eks.amazonaws.com/nodegroup":      "gpu",
		"K8s.image.gpu-operator":                      "v25.10.1",
		"K8s.image.aws-efa-k8s-device-plugin":         "v0.5.3",
		"K8s.image.pause":                             "sha256:abc",
		"K8s.labels.nvidia.com/gpu.present":           "true",
		"K8s.server.platform":                         "linux/amd64",
		"K8s.node.operating-system":                   "linux",
		"K8s.node.os-image":                           "Ubuntu 24.04.3 LTS",
		"K8s.node.kubelet-version":                    "v1.33.5-eks-3025e55",
		"K8s.node.container-runtime-id":               "containerd://1.7.27",
		"K8s.node.architecture":                       "amd64",
		"K8s.server.goVersion":                        "go1.24.9",
		"K8s.labels.kubernetes.io/hostname":           "ip-10-0-158-18.ec2.internal",
		"K8s.image.nonexistent-should-not-be-checked": "",
	} {
		got, ok := s.Lookup(name)
		if want == "" {
			if ok {
				t.Errorf("%s = %q, want none", name, got)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("%s = %q (%v), want %q", name, got, ok, want)
		}
	}

	// A recipe's provider constraint now has something to check.
	cat, err := recipes.Load("")
	if err != nil {
		t.Fatal(err)
	}
	res, err := cat.Resolve(recipes.Query{Service: "gke", Accelerator: "h100", Intent: "training"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := recipes.Validate(res.Recipe, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range rep.Checks {
		if ch.Name == "K8s.node.provider" && (ch.Status != recipes.StatusFailed || ch.Actual != "eks") {
			t.Errorf("provider check on a gke recipe = %+v, want failed with eks", ch)
		}
	}
}

func TestAddClusterViewNoGPUNode(t *testing.T) {
	c := clients([]runtime.Object{&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cpu"}}})
	s := &recipes.Snapshot{Kind: recipes.KindSnapshot}
	AddClusterView(context.Background(), c, s, "")
	if why, ok := s.Unreadable("K8s.node.provider"); !ok || !strings.Contains(why, "no GPU node") {
		t.Errorf("unreadable = %q %v", why, ok)
	}
	if _, ok := s.Lookup("K8s.server.version"); !ok {
		t.Error("server version missing")
	}
	// A named node is taken even without GPU labels.
	s = &recipes.Snapshot{Kind: recipes.KindSnapshot}
	AddClusterView(context.Background(), c, s, "cpu")
	if got, _ := s.Lookup("K8s.node.source-node"); got != "cpu" {
		t.Errorf("source-node = %q", got)
	}
}

func TestCluster(t *testing.T) {
	c := clients([]runtime.Object{
		gpuNode("gpu-1", "aws:///x/i-1", nil, "8"),
		gpuNode("gpu-2", "aws:///x/i-2", nil, "0"),
		deployment("gpu-operator", "gpu-operator", "nvcr.io/nvidia/gpu-operator:v25.10.1", 1, 0),
		daemonSet("gpu-operator", "nvidia-device-plugin-daemonset", "nvcr.io/nvidia/k8s-device-plugin:v0.18.0", 2, 1),
	}, crd("clusterpolicies.nvidia.com", true), crd("queues.scheduling.run.ai", false))
	cl, err := Cluster(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if w := cl.Deployments["gpu-operator/gpu-operator"]; w.Desired != 1 || w.Ready != 0 {
		t.Errorf("deployment = %+v", w)
	}
	if w := cl.DaemonSets["gpu-operator/nvidia-device-plugin-daemonset"]; w.Desired != 2 || w.Ready != 1 {
		t.Errorf("daemonset = %+v", w)
	}
	if !cl.CRDs["clusterpolicies.nvidia.com"] || cl.CRDs["queues.scheduling.run.ai"] {
		t.Errorf("crds = %v", cl.CRDs)
	}
	if got := cl.GPUNodes(); len(got) != 2 {
		t.Errorf("gpu nodes = %v", got)
	}

	// The deployment phase on it fails where the dump says so.
	cat, _ := recipes.Load("")
	res, err := cat.Resolve(recipes.Query{Service: "eks", Accelerator: "h100", Intent: "training"})
	if err != nil {
		t.Fatal(err)
	}
	rep := recipes.ValidateDeployment(res.Recipe, cl)
	failed := map[string]bool{}
	for _, ch := range rep.Checks {
		if ch.Status == recipes.StatusFailed {
			failed[ch.Name] = true
		}
	}
	for _, want := range []string{
		"gpu-operator: Deployment gpu-operator/gpu-operator",
		"gpu-operator: DaemonSet gpu-operator/nvidia-device-plugin-daemonset",
		"gpu-operator: Resource nvidia.com/gpu",
		"kai-scheduler: CRD queues.scheduling.run.ai",
	} {
		if !failed[want] {
			t.Errorf("%s did not fail; failed: %v", want, failed)
		}
	}
	if failed["gpu-operator: CRD clusterpolicies.nvidia.com"] {
		t.Error("an established CRD failed")
	}
}

func TestSnapshotConfigMap(t *testing.T) {
	c := fake.NewClientset()
	ctx := context.Background()
	if _, err := ReadSnapshotConfigMap(ctx, c, "gpu", "node-1"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing configmap: %v", err)
	}
	for _, data := range []string{"kind: Snapshot\n", "kind: Snapshot\nmeasurements: []\n"} {
		if err := WriteSnapshotConfigMap(ctx, c, "gpu", "node-1", []byte(data)); err != nil {
			t.Fatal(err)
		}
		got, err := ReadSnapshotConfigMap(ctx, c, "gpu", "node-1")
		if err != nil || string(got) != data {
			t.Errorf("read back %q, %v; want %q", got, err, data)
		}
	}
	c = fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "gpu"}, Data: map[string]string{"x": "y"}})
	if _, err := ReadSnapshotConfigMap(ctx, c, "gpu", "other"); err == nil || !strings.Contains(err.Error(), "no snapshot.yaml key") {
		t.Errorf("configmap without the key: %v", err)
	}
}

func TestParseConfigMapRef(t *testing.T) {
	for _, tt := range []struct {
		ref, ns, name string
		ok            bool
	}{
		{"cm://gpu-validation/node-1", "gpu-validation", "node-1", true},
		{"cm://gpu/", "", "", false},
		{"cm:///name", "", "", false},
		{"cm://a/b/c", "", "", false},
		{"node.yaml", "", "", false},
	} {
		ns, name, ok := ParseConfigMapRef(tt.ref)
		if ns != tt.ns || name != tt.name || ok != tt.ok {
			t.Errorf("ParseConfigMapRef(%q) = %q %q %v", tt.ref, ns, name, ok)
		}
	}
}

func writeKubeconfig(t *testing.T, server, caPEM, extraUser string) string {
	t.Helper()
	ca := ""
	if caPEM != "" {
		ca = "    certificate-authority-data: " + base64.StdEncoding.EncodeToString([]byte(caPEM)) + "\n"
	}
	kc := "apiVersion: v1\nkind: Config\ncurrent-context: test\n" +
		"contexts:\n- name: other\n  context: {cluster: nope, user: nope}\n- name: test\n  context: {cluster: c1, user: u1}\n" +
		"clusters:\n- name: c1\n  cluster:\n    server: " + server + "\n" + ca +
		"users:\n- name: u1\n  user:\n" + extraUser
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConnectKubeconfig: the kubeconfig's current context, CA and token
// file reach the API server through client-go; what fails is recorded.
func TestConnectKubeconfig(t *testing.T) {
	var gotAuth string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"gitVersion": "v1.33.5-eks-3025e55", "goVersion": "go1.24.9", "platform": "linux/amd64"})
	}))
	defer srv.Close()
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	view := func(kubeconfig string) *recipes.Snapshot {
		t.Helper()
		c, err := Connect(kubeconfig, false)
		if err != nil {
			t.Fatal(err)
		}
		s := &recipes.Snapshot{Kind: recipes.KindSnapshot}
		AddClusterView(context.Background(), c, s, "")
		return s
	}
	s := view(writeKubeconfig(t, srv.URL, caPEM, "    tokenFile: "+tokenFile+"\n"))
	if got, _ := s.Lookup("K8s.server.version"); got != "v1.33.5-eks-3025e55" {
		t.Errorf("K8s.server.version = %q", got)
	}
	if gotAuth != "Bearer s3cret" {
		t.Errorf("Authorization = %q", gotAuth)
	}
	if why, ok := s.Unreadable("K8s.node"); !ok || !strings.Contains(why, "list nodes") {
		t.Errorf("nodes that cannot be listed: %q %v", why, ok)
	}

	// Without the cluster's CA the server is not trusted.
	s = view(writeKubeconfig(t, srv.URL, "", "    token: x\n"))
	if why, ok := s.Unreadable("K8s.server.version"); !ok || !strings.Contains(why, "certificate") {
		t.Errorf("untrusted server: %q %v", why, ok)
	}
	if _, err := Connect(filepath.Join(t.TempDir(), "missing"), false); err == nil {
		t.Error("a missing kubeconfig connected")
	}
}
