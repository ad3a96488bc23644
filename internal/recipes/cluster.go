package recipes

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Cluster is what the deployment phase checks: the workloads, CRDs and
// nodes of a cluster, read from `kubectl get -o json` output or from the
// API server (package recipes/kube).
type Cluster struct {
	// Source names where the state came from (a file, a context).
	Source      string
	Deployments map[string]Workload // "namespace/name"
	DaemonSets  map[string]Workload // "namespace/name"
	// CRDs maps a CRD's name to whether it is Established.
	CRDs  map[string]bool
	Nodes []Node
}

// Workload is the status of a Deployment or DaemonSet. For a Deployment,
// Desired is spec.replicas and Ready the available replicas; for a
// DaemonSet, desiredNumberScheduled and numberReady.
type Workload struct {
	Desired, Ready int
}

// Node is a node's labels and allocatable resources.
type Node struct {
	Name        string
	Labels      map[string]string
	Allocatable map[string]string
}

// GPU node labels: GPU feature discovery's, or Node Feature Discovery's
// NVIDIA PCI vendor label before GFD runs.
var gpuNodeLabels = []string{"nvidia.com/gpu.present", "feature.node.kubernetes.io/pci-10de.present"}

// IsGPUNode reports whether a node is labelled as having NVIDIA GPUs.
func (n Node) IsGPUNode() bool {
	for _, l := range gpuNodeLabels {
		if n.Labels[l] == "true" {
			return true
		}
	}
	return false
}

// NewCluster returns an empty cluster state.
func NewCluster(source string) *Cluster {
	return &Cluster{Source: source, Deployments: map[string]Workload{}, DaemonSets: map[string]Workload{}, CRDs: map[string]bool{}}
}

// kubeObject holds the fields of the kinds the deployment phase reads.
type kubeObject struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Replicas *int `json:"replicas"`
	} `json:"spec"`
	Status struct {
		AvailableReplicas      int               `json:"availableReplicas"`
		DesiredNumberScheduled int               `json:"desiredNumberScheduled"`
		NumberReady            int               `json:"numberReady"`
		Allocatable            map[string]string `json:"allocatable"`
		Conditions             []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
	} `json:"status"`
	Items []json.RawMessage `json:"items"`
}

// ReadClusterDump reads `kubectl get deployments,daemonsets,crds,nodes -A
// -o json` output: a List (nested Lists too) or one object, or several
// such documents one after another. Kinds it does not check are ignored.
func ReadClusterDump(data []byte, source string) (*Cluster, error) {
	c := NewCluster(source)
	dec := json.NewDecoder(strings.NewReader(string(data)))
	docs := 0
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("read cluster dump %s: %w", source, err)
		}
		if err := c.add(raw); err != nil {
			return nil, fmt.Errorf("read cluster dump %s: %w", source, err)
		}
		docs++
	}
	if docs == 0 {
		return nil, fmt.Errorf("read cluster dump %s: no JSON document (want kubectl get -o json output)", source)
	}
	return c, nil
}

func (c *Cluster) add(raw json.RawMessage) error {
	var o kubeObject
	if err := json.Unmarshal(raw, &o); err != nil {
		return err
	}
	key := o.Metadata.Namespace + "/" + o.Metadata.Name
	switch o.Kind {
	case "List", "DeploymentList", "DaemonSetList", "NodeList", "CustomResourceDefinitionList":
		for _, item := range o.Items {
			// Items of typed lists carry no kind; take it from the list's.
			if strings.HasSuffix(o.Kind, "List") && o.Kind != "List" {
				var m map[string]json.RawMessage
				if err := json.Unmarshal(item, &m); err != nil {
					return err
				}
				if _, ok := m["kind"]; !ok {
					m["kind"], _ = json.Marshal(strings.TrimSuffix(o.Kind, "List"))
					item, _ = json.Marshal(m)
				}
			}
			if err := c.add(item); err != nil {
				return err
			}
		}
	case "Deployment":
		desired := 1
		if o.Spec.Replicas != nil {
			desired = *o.Spec.Replicas
		}
		c.Deployments[key] = Workload{Desired: desired, Ready: o.Status.AvailableReplicas}
	case "DaemonSet":
		c.DaemonSets[key] = Workload{Desired: o.Status.DesiredNumberScheduled, Ready: o.Status.NumberReady}
	case "CustomResourceDefinition":
		established := false
		for _, cond := range o.Status.Conditions {
			if cond.Type == "Established" && cond.Status == "True" {
				established = true
			}
		}
		c.CRDs[o.Metadata.Name] = established
	case "Node":
		c.Nodes = append(c.Nodes, Node{Name: o.Metadata.Name, Labels: o.Metadata.Labels, Allocatable: o.Status.Allocatable})
	case "":
		return fmt.Errorf("an object has no kind")
	}
	return nil
}

// GPUNodes returns the names of the nodes labelled as GPU nodes, sorted.
func (c *Cluster) GPUNodes() []string {
	var names []string
	for _, n := range c.Nodes {
		if n.IsGPUNode() {
			names = append(names, n.Name)
		}
	}
	slices.Sort(names)
	return names
}

// ValidateDeployment runs every enabled component's health checks against
// the cluster state, in deployment order.
func ValidateDeployment(r *Recipe, c *Cluster) *Report {
	rep := &Report{Recipe: r.Name, Phase: PhaseDeployment, Snapshot: c.Source}
	gpuNodes := c.GPUNodes()
	for _, name := range r.DeploymentOrder {
		comp := r.Components[name]
		for _, h := range comp.Checks {
			ch := c.check(h, comp.Namespace, gpuNodes)
			ch.Name = name + ": " + ch.Name
			ch.Source = name
			if ch.Status == StatusFailed {
				ch.Remediation = h.Remediation
			}
			rep.add(ch)
		}
	}
	return rep
}

func (c *Cluster) check(h HealthCheck, namespace string, gpuNodes []string) Check {
	ns := h.Namespace
	if ns == "" {
		ns = namespace
	}
	key := ns + "/" + h.Name
	ch := Check{Type: h.Kind}
	fail := func(format string, a ...any) Check {
		ch.Status, ch.Message = StatusFailed, fmt.Sprintf(format, a...)
		return ch
	}
	switch h.Kind {
	case CheckDeployment:
		ch.Name, ch.Expected = "Deployment "+key, "available"
		w, ok := c.Deployments[key]
		if !ok {
			return fail("not found")
		}
		ch.Actual = fmt.Sprintf("%d/%d available", w.Ready, w.Desired)
		if w.Ready < max(w.Desired, 1) {
			return fail("%d of %d replicas available", w.Ready, w.Desired)
		}
	case CheckDaemonSet:
		ch.Name, ch.Expected = "DaemonSet "+key, "ready"
		if h.GPUNodes {
			ch.Expected = fmt.Sprintf("ready on %d GPU nodes", len(gpuNodes))
		}
		w, ok := c.DaemonSets[key]
		if !ok {
			return fail("not found")
		}
		ch.Actual = fmt.Sprintf("%d/%d ready", w.Ready, w.Desired)
		switch {
		case h.GPUNodes && len(gpuNodes) == 0:
			return fail("no GPU nodes (no node labelled %s=true)", gpuNodeLabels[0])
		case w.Desired == 0:
			return fail("scheduled on no node")
		case h.GPUNodes && w.Desired < len(gpuNodes):
			return fail("scheduled on %d nodes, fewer than the %d GPU nodes", w.Desired, len(gpuNodes))
		case w.Ready < w.Desired:
			return fail("%d of %d pods ready", w.Ready, w.Desired)
		}
	case CheckCRD:
		ch.Name, ch.Expected = "CRD "+h.Name, "established"
		established, ok := c.CRDs[h.Name]
		if !ok {
			return fail("not installed")
		}
		ch.Actual = "installed"
		if !established {
			return fail("not established")
		}
		ch.Actual = "established"
	case CheckResource:
		ch.Name, ch.Expected = "Resource "+h.Name, "allocatable on every GPU node"
		if len(gpuNodes) == 0 {
			return fail("no GPU nodes (no node labelled %s=true)", gpuNodeLabels[0])
		}
		var missing []string
		total := int64(0)
		for _, n := range c.Nodes {
			if !n.IsGPUNode() {
				continue
			}
			// Extended resources are whole numbers.
			v, err := strconv.ParseInt(n.Allocatable[h.Name], 10, 64)
			if err != nil || v <= 0 {
				missing = append(missing, n.Name)
				continue
			}
			total += v
		}
		ch.Actual = strconv.FormatInt(total, 10) + " on " + strconv.Itoa(len(gpuNodes)-len(missing)) + " nodes"
		if len(missing) > 0 {
			slices.Sort(missing)
			return fail("not allocatable on %s", strings.Join(missing, ", "))
		}
	}
	ch.Status = StatusPassed
	return ch
}
