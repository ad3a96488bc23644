// Package recipes resolves cluster recipes (which Helm releases, values and
// node constraints a GPU Kubernetes cluster of a given kind should run) from
// embedded overlay data, checks node snapshots against them, reports drift
// and writes deployment bundles. Everything here is offline and
// deterministic: the same input gives the same bytes.
package recipes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// APIVersion is the apiVersion of nvbind's recipe and overlay documents.
const APIVersion = "nvbind.io/v1alpha1"

// Kinds of documents this package reads.
const (
	KindRecipe   = "Recipe"
	KindOverlay  = "Overlay"
	KindCriteria = "Criteria"
	KindSnapshot = "Snapshot"
	// KindSupport lists the supported combinations.
	KindSupport = "Support"
	// KindPerformance holds the performance phase's thresholds.
	KindPerformance = "Performance"
)

// Recipe is a resolved, self-contained recipe: every value is in it, nothing
// points back into the binary.
type Recipe struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Criteria   Query  `json:"criteria"`
	// Overlays lists the overlays applied, in the order they applied.
	Overlays    []string              `json:"overlays"`
	Constraints map[string]Constraint `json:"constraints,omitempty"`
	Components  map[string]Component  `json:"components"`
	// DeploymentOrder is topological over dependsOn, ties by name.
	DeploymentOrder []string `json:"deploymentOrder"`
	// Fabric is the GPU-to-GPU network between nodes the stack sets up
	// (efa, tcpxo, infiniband, roce); empty for single-node work.
	Fabric string `json:"fabric,omitempty"`
	// Performance is the NCCL bandwidth the fabric must reach, from the
	// performance table for the accelerator and fabric.
	Performance *Performance `json:"performance,omitempty"`
}

// Performance is the performance phase's expectation for a recipe.
type Performance struct {
	// Test is the nccl-tests binary whose output is read.
	Test string `json:"test"`
	// MinBusBandwidth is the out-of-place bus bandwidth, in GB/s, the
	// largest message size must reach.
	MinBusBandwidth float64 `json:"minBusBandwidthGBps"`
	// TolerancePercent lowers the bar by that share (run-to-run noise).
	TolerancePercent float64 `json:"tolerancePercent,omitempty"`
	// MessageSize is the largest message the job sends (all_reduce_perf -e).
	MessageSize string `json:"messageSize"`
	MinNodes    int    `json:"minNodes"`
	// Basis says where the number comes from.
	Basis       string `json:"basis"`
	Remediation string `json:"remediation"`
}

// Query is what a recipe is asked for: the cluster's kind.
type Query struct {
	Service     string `json:"service"`
	Accelerator string `json:"accelerator"`
	OS          string `json:"os,omitempty"`
	Intent      string `json:"intent"`
	// Platform picks the serving layer of an inference recipe (kserve,
	// nim).
	Platform string `json:"platform,omitempty"`
	Nodes    int    `json:"nodes,omitempty"`
}

// Name is the recipe's name for a query: eks-h100-ubuntu-training-n64,
// eks-h100-ubuntu-inference-nim.
func (q Query) Name() string {
	parts := []string{q.Service, q.Accelerator}
	if q.OS != "" {
		parts = append(parts, q.OS)
	}
	parts = append(parts, q.Intent)
	if q.Platform != "" {
		parts = append(parts, q.Platform)
	}
	if q.Nodes > 0 {
		parts = append(parts, "n"+strconv.Itoa(q.Nodes))
	}
	return strings.Join(parts, "-")
}

// ConstraintSpec is one expected measurement, as overlays write it.
type ConstraintSpec struct {
	// Value is an expression: ">= 1.30", "in 22.04, 24.04", "=~ H100", or a
	// bare value meaning ==.
	Value string `json:"value"`
	// Type forces version, number or string; empty infers it from Value.
	Type string `json:"type,omitempty"`
	// Required turns a missing measurement into a failure instead of a skip.
	Required bool `json:"required,omitempty"`
	// Remediation says how to fix a node that fails the constraint: what
	// to change, the command or the value.
	Remediation string `json:"remediation,omitempty"`
}

// Constraint is a ConstraintSpec in a resolved recipe, with the overlay that
// set its value.
type Constraint struct {
	ConstraintSpec
	Source string `json:"source,omitempty"`
}

// Component is one Helm release, Kubernetes objects applied after it, or
// both.
type Component struct {
	Description string `json:"description,omitempty"`
	// Repository is an https:// chart repository or an oci:// registry path;
	// empty, with Chart and Version, for a component of manifests only.
	Repository string `json:"repository,omitempty"`
	Chart      string `json:"chart,omitempty"`
	Version    string `json:"version,omitempty"`
	Namespace  string `json:"namespace"`
	// Enabled false drops the component (overlays only; a resolved recipe
	// carries enabled components only).
	Enabled   *bool          `json:"enabled,omitempty"`
	DependsOn []string       `json:"dependsOn,omitempty"`
	Values    map[string]any `json:"values,omitempty"`
	// Manifests are Kubernetes objects by name, applied after the chart;
	// a map so overlays can change one field of one object.
	Manifests map[string]map[string]any `json:"manifests,omitempty"`
	// Checks are the deployment phase's health checks for the component.
	Checks []HealthCheck `json:"checks,omitempty"`
}

// HealthCheck is one thing a deployed component must show in the cluster.
type HealthCheck struct {
	// Kind is Deployment (available), DaemonSet (scheduled and ready),
	// CRD (established) or Resource (allocatable on the GPU nodes).
	Kind string `json:"kind"`
	// Name is the object's name, or the extended resource's
	// (nvidia.com/gpu).
	Name string `json:"name"`
	// Namespace defaults to the component's.
	Namespace string `json:"namespace,omitempty"`
	// GPUNodes: a DaemonSet must be scheduled on every GPU node.
	GPUNodes    bool   `json:"gpuNodes,omitempty"`
	Remediation string `json:"remediation"`
}

// Health check kinds.
const (
	CheckDeployment = "Deployment"
	CheckDaemonSet  = "DaemonSet"
	CheckCRD        = "CRD"
	CheckResource   = "Resource"
)

// HasChart reports whether the component installs a Helm chart.
func (c Component) HasChart() bool { return c.Chart != "" }

// RepoBundled is the repository of a chart the bundle carries itself
// (nvbind's own, embedded in the binary): no chart registry is needed.
const RepoBundled = "bundled"

// IsOCI reports whether the chart comes from an OCI registry.
func (c Component) IsOCI() bool { return strings.HasPrefix(c.Repository, "oci://") }

// IsBundled reports whether the bundle carries the chart (charts/<chart>).
func (c Component) IsBundled() bool { return c.Repository == RepoBundled }

// ChartRef is the chart argument for helm: oci://host/path/chart for OCI
// registries, ./charts/<chart> for a bundled chart, the bare chart name
// otherwise (used with --repo).
func (c Component) ChartRef() string {
	switch {
	case c.IsOCI():
		return strings.TrimSuffix(c.Repository, "/") + "/" + c.Chart
	case c.IsBundled():
		return "./" + bundledChartDir(c.Chart)
	}
	return c.Chart
}

// bundledChartDir is where a bundle carries a chart.
func bundledChartDir(chart string) string { return "charts/" + chart }

// Format is an output encoding.
type Format string

// Encodings for documents.
const (
	FormatYAML Format = "yaml"
	FormatJSON Format = "json"
)

// Encode writes v as YAML or indented JSON. Map keys come out sorted, so the
// bytes depend on the content only.
func Encode(v any, f Format) ([]byte, error) {
	switch f {
	case FormatJSON:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return nil, err
		}
		return append(b, '\n'), nil
	case FormatYAML, "":
		return yaml.Marshal(v)
	}
	return nil, fmt.Errorf("unknown format %q (want yaml or json)", f)
}

// decodeGeneric reads YAML or JSON into plain Go values, keeping numbers as
// json.Number so large integers survive unchanged.
func decodeGeneric(data []byte, v any) error {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	return d.Decode(v)
}

// ReadRecipe parses a rendered recipe (YAML or JSON), checks it and
// recomputes its deployment order from the components' dependencies.
func ReadRecipe(data []byte) (*Recipe, error) {
	// One YAML parse; the JSON is then read three ways.
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("read recipe: %w", err)
	}
	// Kind first, so a snapshot given as a recipe is named as one.
	var head struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(j, &head); err != nil {
		return nil, fmt.Errorf("read recipe: %w", err)
	}
	if head.Kind != KindRecipe {
		return nil, fmt.Errorf("read recipe: kind is %q, want %s", head.Kind, KindRecipe)
	}
	if head.APIVersion != APIVersion {
		return nil, fmt.Errorf("read recipe: apiVersion is %q, want %s", head.APIVersion, APIVersion)
	}
	var r Recipe
	strict := json.NewDecoder(bytes.NewReader(j))
	strict.DisallowUnknownFields()
	if err := strict.Decode(&r); err != nil {
		return nil, fmt.Errorf("read recipe: %w", err)
	}
	// Keep numbers exact in values: decode them again without float64.
	var raw struct {
		Components map[string]struct {
			Values    map[string]any            `json:"values"`
			Manifests map[string]map[string]any `json:"manifests"`
		} `json:"components"`
	}
	exact := json.NewDecoder(bytes.NewReader(j))
	exact.UseNumber()
	if err := exact.Decode(&raw); err != nil {
		return nil, fmt.Errorf("read recipe: %w", err)
	}
	for name, c := range r.Components {
		c.Values = raw.Components[name].Values
		c.Manifests = raw.Components[name].Manifests
		r.Components[name] = c
	}
	for name, c := range r.Components {
		if c.Enabled != nil && !*c.Enabled {
			delete(r.Components, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Components)) {
		if err := checkComponent(name, r.Components[name]); err != nil {
			return nil, fmt.Errorf("read recipe: %w", err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Constraints)) {
		c := r.Constraints[name]
		if err := checkConstraintName(name); err != nil {
			return nil, fmt.Errorf("read recipe: %w", err)
		}
		if _, err := ParseExpr(c.Value, c.Type); err != nil {
			return nil, fmt.Errorf("read recipe: constraint %s: %w", name, err)
		}
	}
	order, err := DeploymentOrder(r.Components)
	if err != nil {
		return nil, fmt.Errorf("read recipe: %w", err)
	}
	r.DeploymentOrder = order
	return &r, nil
}

// checkComponent checks a component of a resolved recipe: every field a
// bundle needs is there and well formed.
func checkComponent(name string, c Component) error {
	if !validName(name) {
		return fmt.Errorf("component %q: name must be lower-case letters, digits and '-'", name)
	}
	if c.Namespace == "" {
		return fmt.Errorf("component %s: namespace is empty", name)
	}
	// A chart needs all three fields; a component without one needs
	// manifests.
	if c.Repository != "" || c.Chart != "" || c.Version != "" || len(c.Manifests) == 0 {
		for _, f := range [][2]string{{"repository", c.Repository}, {"chart", c.Chart}, {"version", c.Version}} {
			if f[1] == "" {
				return fmt.Errorf("component %s: %s is empty", name, f[0])
			}
		}
	}
	for mname, m := range c.Manifests {
		if !validName(mname) {
			return fmt.Errorf("component %s: manifest %q: name must be lower-case letters, digits and '-'", name, mname)
		}
		if m["apiVersion"] == nil || m["kind"] == nil {
			return fmt.Errorf("component %s: manifest %s has no apiVersion or kind", name, mname)
		}
	}
	return checkComponentFields(name, c)
}

// checkComponentFields checks the fields that are set, as an overlay may set
// some of them only.
func checkComponentFields(name string, c Component) error {
	if c.Repository != "" && c.Repository != RepoBundled && !strings.HasPrefix(c.Repository, "https://") && !strings.HasPrefix(c.Repository, "oci://") {
		return fmt.Errorf("component %s: repository %q must start with https:// or oci://, or be %q", name, c.Repository, RepoBundled)
	}
	if c.Chart != "" && !validName(c.Chart) {
		return fmt.Errorf("component %s: chart %q must be lower-case letters, digits and '-'", name, c.Chart)
	}
	if c.Namespace != "" && !validName(c.Namespace) {
		return fmt.Errorf("component %s: namespace %q is not a valid Kubernetes namespace", name, c.Namespace)
	}
	if c.Version != "" && strings.ContainsAny(c.Version, " \t\n'\"$`\\") {
		return fmt.Errorf("component %s: version %q has characters a chart version cannot have", name, c.Version)
	}
	for _, d := range c.DependsOn {
		if !validName(d) {
			return fmt.Errorf("component %s: dependsOn %q is not a component name", name, d)
		}
	}
	for _, h := range c.Checks {
		switch h.Kind {
		case CheckDeployment, CheckDaemonSet, CheckCRD, CheckResource:
		default:
			return fmt.Errorf("component %s: check kind %q is not Deployment, DaemonSet, CRD or Resource", name, h.Kind)
		}
		if h.Name == "" {
			return fmt.Errorf("component %s: a %s check has no name", name, h.Kind)
		}
	}
	return nil
}

// validName accepts DNS-label-like names: they end up in file names, shell
// scripts and Kubernetes object names.
func validName(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// checkConstraintName checks the Type.subtype.key shape of a measurement
// name.
func checkConstraintName(name string) error {
	parts := strings.SplitN(name, ".", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return fmt.Errorf("constraint %q: name must be Type.subtype.key", name)
	}
	if strings.ContainsAny(name, " \t\n") {
		return fmt.Errorf("constraint %q: name has white space", name)
	}
	return nil
}
