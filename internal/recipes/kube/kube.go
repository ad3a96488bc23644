// Package kube reads what recipes need from a cluster's API server with
// client-go: the cluster view of a snapshot (provider, Kubernetes version,
// the GPU node's labels and system info, the images of installed
// operators), the state the deployment phase checks, and snapshots kept in
// ConfigMaps. It is for the nvbind CLI only; nvbind-runtime never links it.
package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nvbind/nvbind/internal/recipes"
)

// Clients are the API clients the package uses; tests pass fakes.
type Clients struct {
	Core    kubernetes.Interface
	Dynamic dynamic.Interface
	// Source names the cluster in reports: the kubeconfig context or
	// "in-cluster".
	Source string
}

// Connect builds clients from a kubeconfig file (its current context), or
// from the pod's service account when inCluster is set.
func Connect(kubeconfig string, inCluster bool) (*Clients, error) {
	var cfg *rest.Config
	var err error
	source := "in-cluster"
	if inCluster {
		cfg, err = rest.InClusterConfig()
	} else {
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
		if raw, rerr := cc.RawConfig(); rerr == nil {
			source = raw.CurrentContext
		}
		cfg, err = cc.ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	cfg.UserAgent = "nvbind"
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Clients{Core: core, Dynamic: dyn, Source: source}, nil
}

// gpuNodeSelectors find GPU nodes: GPU feature discovery's label, then
// Node Feature Discovery's NVIDIA PCI vendor label.
var gpuNodeSelectors = []string{"nvidia.com/gpu.present=true", "feature.node.kubernetes.io/pci-10de.present=true"}

// Provider names a node's cloud as recipes' service criterion does, from
// its providerID, then its labels; "" when it is neither (a self-managed
// cluster, or a cloud nvbind has no recipes for).
func Provider(n *corev1.Node) string {
	prefixes := []struct{ prefix, provider string }{
		{"aws://", "eks"}, {"gce://", "gke"}, {"azure://", "aks"}, {"oci://", "oke"}, {"ocid1.", "oke"},
	}
	for _, p := range prefixes {
		if strings.HasPrefix(n.Spec.ProviderID, p.prefix) {
			return p.provider
		}
	}
	labels := []struct{ prefix, provider string }{
		{"eks.amazonaws.com/", "eks"}, {"cloud.google.com/gke-", "gke"},
		{"kubernetes.azure.com/", "aks"}, {"oci.oraclecloud.com/", "oke"},
	}
	for _, key := range slices.Sorted(maps.Keys(n.Labels)) {
		for _, l := range labels {
			if strings.HasPrefix(key, l.prefix) {
				return l.provider
			}
		}
	}
	return ""
}

// pickNode returns the named node, else the first GPU node by name.
func pickNode(ctx context.Context, c kubernetes.Interface, name string) (*corev1.Node, error) {
	if name != "" {
		n, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", name, err)
		}
		return n, nil
	}
	for _, sel := range gpuNodeSelectors {
		list, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		if len(list.Items) > 0 {
			sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
			return &list.Items[0], nil
		}
	}
	return nil, fmt.Errorf("no GPU node (no node labelled %s); name one with --node", strings.Join(gpuNodeSelectors, " or "))
}

// AddClusterView records the cluster's view in the snapshot: K8s.server
// (version), K8s.node (provider, provider-id, kubelet and runtime versions,
// OS image, kernel) and K8s.labels of a GPU node (nodeName, or the first
// GPU node), and K8s.image (each installed Deployment's and DaemonSet's
// container images by name, with their tags), as AICR records them. What
// cannot be read is marked unreadable.
func AddClusterView(ctx context.Context, c *Clients, s *recipes.Snapshot, nodeName string) {
	v, err := c.Core.Discovery().ServerVersion()
	if err != nil {
		s.MarkUnreadable("K8s.server", err.Error())
	} else {
		s.Set("K8s", "server", "version", v.GitVersion)
		if v.GoVersion != "" {
			s.Set("K8s", "server", "goVersion", v.GoVersion)
		}
		if v.Platform != "" {
			s.Set("K8s", "server", "platform", v.Platform)
		}
	}
	n, err := pickNode(ctx, c.Core, nodeName)
	if err != nil {
		s.MarkUnreadable("K8s.node", err.Error())
	} else {
		info := n.Status.NodeInfo
		set := func(k, v string) {
			if v != "" {
				s.Set("K8s", "node", k, v)
			}
		}
		set("source-node", n.Name)
		set("provider", Provider(n))
		set("provider-id", n.Spec.ProviderID)
		set("kubelet-version", info.KubeletVersion)
		set("kernel-version", info.KernelVersion)
		set("os-image", info.OSImage)
		set("operating-system", info.OperatingSystem)
		set("architecture", info.Architecture)
		if rt := info.ContainerRuntimeVersion; rt != "" {
			set("container-runtime-id", rt)
			name, ver, _ := strings.Cut(rt, "://")
			set("container-runtime-name", name)
			set("container-runtime-version", ver)
		}
		for k, v := range n.Labels {
			s.Set("K8s", "labels", k, v)
		}
	}
	images, err := installedImages(ctx, c.Core)
	if err != nil {
		s.MarkUnreadable("K8s.image", err.Error())
	}
	for name, tag := range images {
		s.Set("K8s", "image", name, tag)
	}
	s.Sort()
}

// installedImages maps each container image's last path element to its tag
// (or digest), over every Deployment and DaemonSet: what operators and
// plugins run, at which version.
func installedImages(ctx context.Context, c kubernetes.Interface) (map[string]string, error) {
	images := map[string]string{}
	add := func(spec corev1.PodSpec) {
		for _, ct := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			ref := ct.Image
			tag := ""
			if i := strings.LastIndex(ref, "@"); i >= 0 {
				ref, tag = ref[:i], ref[i+1:]
			} else if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
				ref, tag = ref[:i], ref[i+1:]
			}
			if tag == "" {
				tag = "latest"
			}
			images[ref[strings.LastIndex(ref, "/")+1:]] = tag
		}
	}
	deps, err := c.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return images, fmt.Errorf("list deployments: %w", err)
	}
	for _, d := range deps.Items {
		add(d.Spec.Template.Spec)
	}
	dss, err := c.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return images, fmt.Errorf("list daemonsets: %w", err)
	}
	for _, d := range dss.Items {
		add(d.Spec.Template.Spec)
	}
	return images, nil
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Cluster reads the state the deployment phase checks.
func Cluster(ctx context.Context, c *Clients) (*recipes.Cluster, error) {
	cl := recipes.NewCluster(c.Source)
	deps, err := c.Core.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	for _, d := range deps.Items {
		cl.Deployments[d.Namespace+"/"+d.Name] = deploymentStatus(d)
	}
	dss, err := c.Core.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list daemonsets: %w", err)
	}
	for _, d := range dss.Items {
		cl.DaemonSets[d.Namespace+"/"+d.Name] = recipes.Workload{Desired: int(d.Status.DesiredNumberScheduled), Ready: int(d.Status.NumberReady)}
	}
	nodes, err := c.Core.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes.Items {
		alloc := map[string]string{}
		for k, q := range n.Status.Allocatable {
			alloc[string(k)] = q.String()
		}
		cl.Nodes = append(cl.Nodes, recipes.Node{Name: n.Name, Labels: n.Labels, Allocatable: alloc})
	}
	crds, err := c.Dynamic.Resource(crdGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list customresourcedefinitions: %w", err)
	}
	for _, u := range crds.Items {
		cl.CRDs[u.GetName()] = established(u)
	}
	return cl, nil
}

func deploymentStatus(d appsv1.Deployment) recipes.Workload {
	desired := 1
	if d.Spec.Replicas != nil {
		desired = int(*d.Spec.Replicas)
	}
	return recipes.Workload{Desired: desired, Ready: int(d.Status.AvailableReplicas)}
}

func established(u unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// SnapshotKey is the ConfigMap key a snapshot is stored under.
const SnapshotKey = "snapshot.yaml"

// ParseConfigMapRef reads "cm://namespace/name".
func ParseConfigMapRef(ref string) (ns, name string, ok bool) {
	rest, found := strings.CutPrefix(ref, "cm://")
	if !found {
		return "", "", false
	}
	ns, name, found = strings.Cut(rest, "/")
	if !found || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", false
	}
	return ns, name, true
}

// ReadSnapshotConfigMap returns the snapshot stored in a ConfigMap.
func ReadSnapshotConfigMap(ctx context.Context, c kubernetes.Interface, ns, name string) ([]byte, error) {
	cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("configmap %s/%s: %w", ns, name, err)
	}
	data, ok := cm.Data[SnapshotKey]
	if !ok {
		return nil, fmt.Errorf("configmap %s/%s has no %s key (was it written by nvbind snapshot --to-configmap?)", ns, name, SnapshotKey)
	}
	return []byte(data), nil
}

// WriteSnapshotConfigMap creates or replaces the ConfigMap holding a
// snapshot.
func WriteSnapshotConfigMap(ctx context.Context, c kubernetes.Interface, ns, name string, data []byte) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/managed-by": "nvbind"}},
		Data:       map[string]string{SnapshotKey: string(data)},
	}
	_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = c.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("configmap %s/%s: %w", ns, name, err)
	}
	return nil
}
