package recipes

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Assignment is one overlay setting (or, with Deleted, removing) a value.
type Assignment struct {
	Overlay string
	Value   any
	Deleted bool
}

// Provenance maps a dotted value path (components.gpu-operator.version) to
// the assignments made to it, in the order they applied.
type Provenance map[string][]Assignment

// Resolution is a resolved recipe with the history of every value.
type Resolution struct {
	Recipe     *Recipe
	Applied    []*Overlay
	Provenance Provenance
}

// Check validates a query against the catalog's criteria values.
func (c *Catalog) Check(q Query) error {
	for _, f := range []struct {
		flag, value string
		allowed     []string
		required    bool
	}{
		{"service", q.Service, c.Enums.Service, true},
		{"accelerator", q.Accelerator, c.Enums.Accelerator, true},
		{"os", q.OS, c.Enums.OS, false},
		{"intent", q.Intent, c.Enums.Intent, true},
		{"platform", q.Platform, c.Enums.Platform, false},
	} {
		if f.value == "" {
			if f.required {
				return fmt.Errorf("--%s is required (one of %s)", f.flag, strings.Join(f.allowed, ", "))
			}
			continue
		}
		if !slices.Contains(f.allowed, f.value) {
			return fmt.Errorf("--%s %q is not one of %s", f.flag, f.value, strings.Join(f.allowed, ", "))
		}
	}
	if q.Nodes < 0 {
		return fmt.Errorf("--nodes must not be negative")
	}
	if q.Platform != "" && q.Intent != "inference" {
		return fmt.Errorf("--platform %s: a serving platform applies to --intent inference only", q.Platform)
	}
	return nil
}

// Complete fills in what a query may leave out: the OS (the first
// supported one for the service, accelerator and intent) and an inference
// recipe's serving platform (the first platform value).
func (c *Catalog) Complete(q Query) Query {
	if q.OS == "" {
		q.OS = c.defaultOS(q)
	}
	if q.Platform == "" && q.Intent == "inference" && len(c.Enums.Platform) > 0 {
		q.Platform = c.Enums.Platform[0]
	}
	return q
}

// Matches reports whether the overlay applies to the query.
func (o *Overlay) Matches(q Query) bool {
	for _, p := range [][2]string{
		{o.Criteria.Service, q.Service}, {o.Criteria.Accelerator, q.Accelerator},
		{o.Criteria.OS, q.OS}, {o.Criteria.Intent, q.Intent}, {o.Criteria.Platform, q.Platform},
	} {
		if isSet(p[0]) && p[0] != p[1] {
			return false
		}
	}
	if o.nodes != nil {
		if q.Nodes <= 0 {
			return false
		}
		ok, err := o.nodes.Eval(strconv.Itoa(q.Nodes))
		if err != nil || !ok {
			return false
		}
	}
	return true
}

// applicable returns the overlays for q in the order they apply: least
// specific first; at equal specificity embedded before user overlays, then
// by name.
func (c *Catalog) applicable(q Query) []*Overlay {
	var out []*Overlay
	for _, o := range c.Overlays {
		if o.Matches(q) {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if sa, sb := a.Specificity(), b.Specificity(); sa != sb {
			return sa < sb
		}
		if a.Layer != b.Layer {
			return a.Layer < b.Layer
		}
		return a.Name < b.Name
	})
	return out
}

// Resolve renders the recipe for q, after completing it (Complete); a
// combination the support table lacks is refused with the nearest ones.
func (c *Catalog) Resolve(q Query) (*Resolution, error) {
	if err := c.Check(q); err != nil {
		return nil, err
	}
	q = c.Complete(q)
	if err := c.Supported(q); err != nil {
		return nil, err
	}
	applied := c.applicable(q)
	if err := conflicts(applied); err != nil {
		return nil, err
	}
	tree := map[string]any{}
	prov := Provenance{}
	names := make([]string, len(applied))
	for i, o := range applied {
		mergeInto(tree, o.body, nil, o.Name, prov)
		names[i] = o.Name
	}

	var body struct {
		Constraints map[string]Constraint `json:"constraints"`
		Components  map[string]Component  `json:"components"`
		Fabric      string                `json:"fabric"`
	}
	// The tree holds plain JSON values; one round trip types it.
	raw, err := json.Marshal(tree)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", q.Name(), err)
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", q.Name(), err)
	}
	r := &Recipe{
		APIVersion:  APIVersion,
		Kind:        KindRecipe,
		Name:        q.Name(),
		Criteria:    q,
		Overlays:    names,
		Constraints: map[string]Constraint{},
		Components:  map[string]Component{},
		Fabric:      body.Fabric,
	}
	if r.Fabric != "" && q.Intent == "training" {
		r.Performance = c.threshold(q.Accelerator, r.Fabric)
	}
	for _, name := range slices.Sorted(maps.Keys(body.Constraints)) {
		cs := body.Constraints[name]
		if _, err := ParseExpr(cs.Value, cs.Type); err != nil {
			return nil, fmt.Errorf("resolve %s: constraint %s: %w", r.Name, name, err)
		}
		hist := prov["constraints."+name+".value"]
		cs.Source = hist[len(hist)-1].Overlay
		r.Constraints[name] = cs
	}
	// Values keep exact numbers: take them from the tree, not the float64
	// decode.
	comps, _ := tree["components"].(map[string]any)
	for name, comp := range body.Components {
		if comp.Enabled != nil && !*comp.Enabled {
			continue
		}
		comp.Enabled = nil
		if m, ok := comps[name].(map[string]any); ok {
			comp.Values, _ = m["values"].(map[string]any)
			if ms, ok := m["manifests"].(map[string]any); ok {
				comp.Manifests = map[string]map[string]any{}
				for k, v := range ms {
					if obj, ok := v.(map[string]any); ok {
						comp.Manifests[k] = obj
					}
				}
			}
		}
		r.Components[name] = comp
	}
	for _, name := range slices.Sorted(maps.Keys(r.Components)) {
		comp := r.Components[name]
		deps := comp.DependsOn[:0:0]
		for _, d := range comp.DependsOn {
			if _, defined := body.Components[d]; !defined {
				return nil, fmt.Errorf("resolve %s: component %s depends on %q, which is not defined", r.Name, name, d)
			}
			if _, enabled := r.Components[d]; enabled {
				deps = append(deps, d) // a disabled dependency is simply not there
			}
		}
		sort.Strings(deps)
		comp.DependsOn = slices.Compact(deps)
		if len(comp.DependsOn) == 0 {
			comp.DependsOn = nil
		}
		r.Components[name] = comp
		if err := checkComponent(name, comp); err != nil {
			return nil, fmt.Errorf("resolve %s: %w", r.Name, err)
		}
	}
	order, err := DeploymentOrder(r.Components)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", r.Name, err)
	}
	r.DeploymentOrder = order
	return &Resolution{Recipe: r, Applied: applied, Provenance: prov}, nil
}

// mergeInto deep-merges src into dst: maps merge key by key, anything else
// (scalars, lists) replaces, and null deletes the key, except inside a
// component's values, where null is kept for Helm (it removes a chart
// default there). Every leaf written is recorded in prov under its dotted
// path.
func mergeInto(dst, src map[string]any, path []string, overlay string, prov Provenance) {
	for _, k := range sortedKeys(src) {
		v := src[k]
		p := append(path[:len(path):len(path)], k)
		dotted := strings.Join(p, ".")
		if v == nil && !inValues(p) {
			if _, ok := dst[k]; ok {
				delete(dst, k)
				prov[dotted] = append(prov[dotted], Assignment{Overlay: overlay, Deleted: true})
			}
			continue
		}
		if sm, ok := v.(map[string]any); ok {
			dm, ok := dst[k].(map[string]any)
			if !ok {
				dm = map[string]any{}
				dst[k] = dm
			}
			mergeInto(dm, sm, p, overlay, prov)
			continue
		}
		dst[k] = v
		prov[dotted] = append(prov[dotted], Assignment{Overlay: overlay, Value: v})
	}
}

// inValues reports whether path lies inside components.<name>.values or
// .manifests, where null is a value to keep.
func inValues(path []string) bool {
	return len(path) > 3 && path[0] == "components" && (path[2] == "values" || path[2] == "manifests")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// conflicts reports two overlays of the same specificity and layer that set
// one value differently: their order would be arbitrary, so it is a data
// error. One overlay setting a value where the other has a map below it
// conflicts too.
func conflicts(applied []*Overlay) error {
	type setter struct {
		overlay string
		value   any
	}
	for i := 0; i < len(applied); {
		leaves := map[string]setter{}   // path → who set a leaf there
		interior := map[string]string{} // path → who set something below it
		j := i
		for ; j < len(applied) && applied[j].Specificity() == applied[i].Specificity() && applied[j].Layer == applied[i].Layer; j++ {
			o := applied[j]
			var err error
			clash := func(other string, path []string) {
				err = fmt.Errorf("overlays %s and %s (both specificity %d) set %s differently",
					other, o.Name, o.Specificity(), strings.Join(path, "."))
			}
			walkLeaves(o.body, nil, func(path []string, v any) {
				if err != nil {
					return
				}
				key := strings.Join(path, "\x00")
				if s, ok := leaves[key]; ok && s.overlay != o.Name && !reflect.DeepEqual(s.value, v) {
					clash(s.overlay, path)
					return
				}
				if other, ok := interior[key]; ok && other != o.Name {
					clash(other, path)
					return
				}
				for n := len(path) - 1; n > 0; n-- {
					above := strings.Join(path[:n], "\x00")
					if s, ok := leaves[above]; ok && s.overlay != o.Name {
						clash(s.overlay, path[:n])
						return
					}
					if _, ok := interior[above]; !ok {
						interior[above] = o.Name
					}
				}
				leaves[key] = setter{o.Name, v}
			})
			if err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

// walkLeaves calls fn for every non-map value under m (null included), with
// its path. Empty maps are not leaves: merging them changes nothing.
func walkLeaves(m map[string]any, path []string, fn func([]string, any)) {
	for _, k := range sortedKeys(m) {
		p := append(path[:len(path):len(path)], k)
		if sub, ok := m[k].(map[string]any); ok {
			walkLeaves(sub, p, fn)
			continue
		}
		fn(p, m[k])
	}
}

// DeploymentOrder sorts components so each comes after its dependencies,
// ties by name. A dependency on a missing component or a cycle is an error.
func DeploymentOrder(comps map[string]Component) ([]string, error) {
	indeg := map[string]int{}
	users := map[string][]string{}
	for name, c := range comps {
		indeg[name] += 0
		for _, d := range c.DependsOn {
			if _, ok := comps[d]; !ok {
				return nil, fmt.Errorf("component %s depends on %q, which is not in the recipe", name, d)
			}
			indeg[name]++
			users[d] = append(users[d], name)
		}
	}
	var ready, order []string
	for name, n := range indeg {
		if n == 0 {
			ready = append(ready, name)
		}
	}
	for len(ready) > 0 {
		sort.Strings(ready)
		next := ready[0]
		ready = ready[1:]
		order = append(order, next)
		for _, u := range users[next] {
			if indeg[u]--; indeg[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	if len(order) != len(comps) {
		var stuck []string
		for name, n := range indeg {
			if n > 0 {
				stuck = append(stuck, name)
			}
		}
		sort.Strings(stuck)
		return nil, fmt.Errorf("dependency cycle among %s", strings.Join(stuck, ", "))
	}
	return order, nil
}

// Waves gives each component its deployment wave: 0 without dependencies,
// else one more than its latest dependency. Components of one wave may be
// installed together.
func Waves(r *Recipe) map[string]int {
	waves := map[string]int{}
	for _, name := range r.DeploymentOrder {
		w := 0
		for _, d := range r.Components[name].DependsOn {
			w = max(w, waves[d]+1)
		}
		waves[name] = w
	}
	return waves
}
