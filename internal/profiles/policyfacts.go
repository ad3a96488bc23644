package profiles

import "sort"

// ParamFact is what a policy needs to know about one parameter of a
// profile request: its type, the value it takes, whether the container
// gave it, and whether that value makes the profile add host device nodes
// (a device-granting parameter, such as gaming's input=true).
type ParamFact struct {
	Name          string
	Type          string
	Value         string
	Given         bool
	GrantsDevices bool
}

// PolicyFacts describes a profile request for a policy check, before
// anything is resolved against the host.
type PolicyFacts struct {
	Capabilities []string
	Params       []ParamFact
}

// TypePath is the type of a host path parameter.
const TypePath = typePath

// PolicyFacts returns the capabilities and parameters of profile name with
// the given parameter values; bad names and values are errors, as in
// Resolve.
func (c *Catalog) PolicyFacts(name string, given map[string]string) (*PolicyFacts, error) {
	chain, err := c.chain(name)
	if err != nil {
		return nil, err
	}
	caps, err := c.Capabilities(name)
	if err != nil {
		return nil, err
	}
	decl, err := declaredParams(chain)
	if err != nil {
		return nil, err
	}
	vals, _, err := resolveParams(name, decl, given)
	if err != nil {
		return nil, err
	}
	f := &PolicyFacts{Capabilities: caps}
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		_, isGiven := given[n]
		pf := ParamFact{Name: n, Type: decl[n].Type, Value: vals[n], Given: isGiven}
		for _, d := range chain {
			for _, w := range d.When {
				if w.Param == n && len(w.Devices) > 0 && contains(w.Values, vals[n]) {
					pf.GrantsDevices = true
				}
			}
		}
		f.Params = append(f.Params, pf)
	}
	return f, nil
}
