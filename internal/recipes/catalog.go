package recipes

import (
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"
)

//go:embed data
var embedded embed.FS

// BaseOverlay is the root every parent chain ends in.
const BaseOverlay = "base"

// Layers an overlay can come from: user overlays (--data) apply after the
// embedded ones of the same specificity.
const (
	LayerEmbedded = 0
	LayerUser     = 1
)

// Enums are the values each criterion may take, from criteria.yaml.
type Enums struct {
	APIVersion  string   `json:"apiVersion"`
	Kind        string   `json:"kind"`
	Service     []string `json:"service"`
	Accelerator []string `json:"accelerator"`
	OS          []string `json:"os"`
	Intent      []string `json:"intent"`
	Platform    []string `json:"platform,omitempty"`
}

// Criteria say which clusters an overlay is for; an empty field or "any"
// matches every cluster.
type Criteria struct {
	Service     string `json:"service,omitempty"`
	Accelerator string `json:"accelerator,omitempty"`
	OS          string `json:"os,omitempty"`
	Intent      string `json:"intent,omitempty"`
	Platform    string `json:"platform,omitempty"`
	// Nodes is an expression on the cluster's node count, e.g. ">= 64".
	Nodes string `json:"nodes,omitempty"`
}

// Overlay is one data file: criteria, an optional parent, and the
// constraints and components it sets.
type Overlay struct {
	APIVersion  string                     `json:"apiVersion"`
	Kind        string                     `json:"kind"`
	Name        string                     `json:"name"`
	Description string                     `json:"description,omitempty"`
	Base        string                     `json:"base,omitempty"`
	Criteria    Criteria                   `json:"criteria,omitempty"`
	Constraints map[string]*ConstraintSpec `json:"constraints,omitempty"`
	Components  map[string]*Component      `json:"components,omitempty"`
	// Fabric names the inter-node GPU network the overlay sets up.
	Fabric string `json:"fabric,omitempty"`

	// File and Layer say where the overlay came from.
	File  string `json:"-"`
	Layer int    `json:"-"`
	// body is the mergeable part ({constraints, components}) as plain
	// values, numbers kept exact.
	body  map[string]any
	nodes *Expr
}

// Specificity counts the criteria an overlay sets.
func (o *Overlay) Specificity() int {
	n := 0
	for _, v := range []string{o.Criteria.Service, o.Criteria.Accelerator, o.Criteria.OS, o.Criteria.Intent, o.Criteria.Platform, o.Criteria.Nodes} {
		if isSet(v) {
			n++
		}
	}
	return n
}

func isSet(v string) bool { return v != "" && v != "any" }

// Catalog is the set of overlays recipes resolve from.
type Catalog struct {
	Enums    Enums
	Overlays map[string]*Overlay
	// Support lists the combinations recipes exist for, in file order.
	Support []Combination
	// Thresholds are the performance phase's bars by accelerator and
	// fabric.
	Thresholds []Threshold
}

var (
	embeddedOnce sync.Once
	embeddedCat  *Catalog
	embeddedErr  error
)

// Load reads the embedded overlays and, when userDir is not empty, the
// user's *.yaml files from it, which add overlays, replace embedded ones of
// the same name, and add criteria values.
func Load(userDir string) (*Catalog, error) {
	if userDir == "" {
		embeddedOnce.Do(func() { embeddedCat, embeddedErr = load("") })
		return embeddedCat, embeddedErr
	}
	return load(userDir)
}

func load(userDir string) (*Catalog, error) {
	c := &Catalog{Overlays: map[string]*Overlay{}}
	sub, err := fs.Sub(embedded, "data")
	if err != nil {
		return nil, err
	}
	if err := c.addDir(sub, ".", "embedded:", LayerEmbedded); err != nil {
		return nil, err
	}
	if userDir != "" {
		if fi, err := os.Stat(userDir); err != nil {
			return nil, fmt.Errorf("overlay directory: %w", err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("overlay directory %s: not a directory", userDir)
		}
		if err := c.addDir(os.DirFS(userDir), ".", userDir+string(filepath.Separator), LayerUser); err != nil {
			return nil, err
		}
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// addDir reads every *.yaml file under dir (recursively).
func (c *Catalog) addDir(fsys fs.FS, dir, label string, layer int) error {
	var files []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read overlays: %w", err)
	}
	sort.Strings(files)
	seen := map[string]string{}
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return fmt.Errorf("read overlays: %w", err)
		}
		name := label + path.Clean(f)
		if err := c.addFile(name, data, layer, seen); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func (c *Catalog) addFile(file string, data []byte, layer int, seen map[string]string) error {
	var head struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return err
	}
	switch head.Kind {
	case KindCriteria:
		var e Enums
		if err := yaml.UnmarshalStrict(data, &e); err != nil {
			return err
		}
		if e.APIVersion != APIVersion {
			return fmt.Errorf("apiVersion is %q, want %s", e.APIVersion, APIVersion)
		}
		c.Enums.Service = union(c.Enums.Service, e.Service)
		c.Enums.Accelerator = union(c.Enums.Accelerator, e.Accelerator)
		c.Enums.OS = union(c.Enums.OS, e.OS)
		c.Enums.Intent = union(c.Enums.Intent, e.Intent)
		c.Enums.Platform = union(c.Enums.Platform, e.Platform)
		return nil
	case KindSupport:
		return c.addSupport(data)
	case KindPerformance:
		return c.addThresholds(data)
	case KindConformance:
		return nil // read by LoadConformance
	case KindOverlay:
	default:
		return fmt.Errorf("kind is %q, want %s, %s, %s or %s", head.Kind, KindOverlay, KindCriteria, KindSupport, KindPerformance)
	}
	o := &Overlay{File: file, Layer: layer}
	if err := yaml.UnmarshalStrict(data, o); err != nil {
		return err
	}
	if o.APIVersion != APIVersion {
		return fmt.Errorf("apiVersion is %q, want %s", o.APIVersion, APIVersion)
	}
	if !validName(o.Name) {
		return fmt.Errorf("overlay name %q must be lower-case letters, digits and '-'", o.Name)
	}
	if prev, dup := seen[o.Name]; dup {
		return fmt.Errorf("overlay %s is also defined in %s", o.Name, prev)
	}
	seen[o.Name] = file
	var body struct {
		Constraints map[string]any `json:"constraints,omitempty"`
		Components  map[string]any `json:"components,omitempty"`
	}
	if err := decodeGeneric(data, &body); err != nil {
		return err
	}
	o.body = map[string]any{}
	if body.Constraints != nil {
		o.body["constraints"] = body.Constraints
	}
	if body.Components != nil {
		o.body["components"] = body.Components
	}
	if o.Fabric != "" {
		o.body["fabric"] = o.Fabric
	}
	// A user overlay with an embedded one's name replaces it.
	c.Overlays[o.Name] = o
	return nil
}

func union(a, b []string) []string {
	for _, v := range b {
		if !slices.Contains(a, v) {
			a = append(a, v)
		}
	}
	return a
}

// check validates the catalog as a whole: enums, parents, constraint
// syntax, component fields and dependency names.
func (c *Catalog) check() error {
	if len(c.Enums.Service) == 0 || len(c.Enums.Accelerator) == 0 || len(c.Enums.Intent) == 0 || len(c.Enums.OS) == 0 {
		return fmt.Errorf("overlays: no criteria values (a kind: %s file is missing)", KindCriteria)
	}
	for _, list := range [][]string{c.Enums.Service, c.Enums.Accelerator, c.Enums.OS, c.Enums.Intent, c.Enums.Platform} {
		for _, v := range list {
			if !validName(v) {
				return fmt.Errorf("criteria value %q must be lower-case letters, digits and '-'", v)
			}
		}
	}
	if err := c.checkSupport(); err != nil {
		return err
	}
	base, ok := c.Overlays[BaseOverlay]
	if !ok {
		return fmt.Errorf("overlays: no %q overlay", BaseOverlay)
	}
	if base.Specificity() != 0 || base.Base != "" {
		return fmt.Errorf("%s: the %s overlay has no criteria and no parent", base.File, BaseOverlay)
	}
	components := map[string]bool{}
	for _, o := range c.Overlays {
		for name := range o.Components {
			components[name] = true
		}
	}
	for _, name := range c.names() {
		o := c.Overlays[name]
		if err := c.checkOverlay(o, components); err != nil {
			return fmt.Errorf("%s: %w", o.File, err)
		}
	}
	return nil
}

func (c *Catalog) checkOverlay(o *Overlay, components map[string]bool) error {
	for _, f := range []struct {
		field, value string
		allowed      []string
	}{
		{"service", o.Criteria.Service, c.Enums.Service},
		{"accelerator", o.Criteria.Accelerator, c.Enums.Accelerator},
		{"os", o.Criteria.OS, c.Enums.OS},
		{"intent", o.Criteria.Intent, c.Enums.Intent},
		{"platform", o.Criteria.Platform, c.Enums.Platform},
	} {
		if isSet(f.value) && !slices.Contains(f.allowed, f.value) {
			return fmt.Errorf("criteria.%s %q is not one of %s", f.field, f.value, strings.Join(f.allowed, ", "))
		}
	}
	if isSet(o.Criteria.Nodes) {
		e, err := ParseExpr(o.Criteria.Nodes, TypeNumber)
		if err != nil {
			return fmt.Errorf("criteria.nodes: %w", err)
		}
		o.nodes = e
	}
	if o.Name != BaseOverlay {
		if o.Base == "" {
			o.Base = BaseOverlay
		}
		if err := c.checkParents(o); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(o.Constraints)) {
		cs := o.Constraints[name]
		if err := checkConstraintName(name); err != nil {
			return err
		}
		if cs == nil {
			continue // null removes an inherited constraint
		}
		if _, err := ParseExpr(cs.Value, cs.Type); err != nil {
			return fmt.Errorf("constraint %s: %w", name, err)
		}
		if o.Layer == LayerEmbedded && strings.TrimSpace(cs.Remediation) == "" {
			return fmt.Errorf("constraint %s: no remediation (say how to fix a node that fails it)", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(o.Components)) {
		comp := o.Components[name]
		if !validName(name) {
			return fmt.Errorf("component %q: name must be lower-case letters, digits and '-'", name)
		}
		if comp == nil {
			continue
		}
		if err := checkComponentFields(name, *comp); err != nil {
			return err
		}
		for _, h := range comp.Checks {
			if o.Layer == LayerEmbedded && strings.TrimSpace(h.Remediation) == "" {
				return fmt.Errorf("component %s: %s check %s has no remediation", name, h.Kind, h.Name)
			}
		}
		for _, d := range comp.DependsOn {
			if !components[d] {
				return fmt.Errorf("component %s: dependsOn %q, which no overlay defines", name, d)
			}
		}
	}
	return nil
}

// checkParents walks the parent chain: each parent exists, there is no
// cycle, and each parent is strictly less specific than its child with
// criteria the child repeats, so a parent matches wherever its child does
// and applies first.
func (c *Catalog) checkParents(o *Overlay) error {
	seen := map[string]bool{o.Name: true}
	child := o
	for child.Name != BaseOverlay {
		parentName := child.Base
		if parentName == "" {
			parentName = BaseOverlay
		}
		p, ok := c.Overlays[parentName]
		if !ok {
			return fmt.Errorf("base %q: no such overlay", parentName)
		}
		if seen[p.Name] {
			return fmt.Errorf("base chain of %s has a cycle through %s", o.Name, p.Name)
		}
		seen[p.Name] = true
		if p.Specificity() >= child.Specificity() {
			return fmt.Errorf("base %s must have fewer criteria than %s", p.Name, child.Name)
		}
		if !criteriaWithin(p.Criteria, child.Criteria) {
			return fmt.Errorf("base %s has criteria %s does not repeat", p.Name, child.Name)
		}
		child = p
	}
	return nil
}

// criteriaWithin reports whether every criterion set in p is set to the same
// value in c.
func criteriaWithin(p, c Criteria) bool {
	pairs := [][2]string{
		{p.Service, c.Service}, {p.Accelerator, c.Accelerator}, {p.OS, c.OS},
		{p.Intent, c.Intent}, {p.Platform, c.Platform}, {p.Nodes, c.Nodes},
	}
	for _, pc := range pairs {
		if isSet(pc[0]) && pc[0] != pc[1] {
			return false
		}
	}
	return true
}

func (c *Catalog) names() []string {
	names := make([]string, 0, len(c.Overlays))
	for n := range c.Overlays {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
