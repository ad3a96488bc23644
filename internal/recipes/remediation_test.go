package recipes

import (
	"strings"
	"testing"
)

// TestRemediationEverywhere walks every constraint, health check,
// performance bar and conformance requirement in the data and checks each
// says how to fix a failure; then fails every check of every supported
// recipe and checks each failure carries its remediation.
func TestRemediationEverywhere(t *testing.T) {
	c := mustLoad(t, "")
	walked := 0
	for _, name := range c.names() {
		o := c.Overlays[name]
		for cname, cs := range o.Constraints {
			walked++
			if cs != nil && len(strings.TrimSpace(cs.Remediation)) < 20 {
				t.Errorf("%s: constraint %s: remediation %q says too little", o.File, cname, cs.Remediation)
			}
		}
		for comp, spec := range o.Components {
			if spec == nil {
				continue
			}
			for _, h := range spec.Checks {
				walked++
				if len(strings.TrimSpace(h.Remediation)) < 20 {
					t.Errorf("%s: %s check %s %s: remediation %q says too little", o.File, comp, h.Kind, h.Name, h.Remediation)
				}
			}
		}
	}
	for _, th := range c.Thresholds {
		walked++
		if len(th.Remediation) < 20 || th.Basis == "" {
			t.Errorf("threshold %s/%s: remediation %q, basis %q", th.Accelerator, th.Fabric, th.Remediation, th.Basis)
		}
	}
	conf, err := LoadConformance()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range conf.Requirements {
		walked++
		if len(r.Remediation) < 20 {
			t.Errorf("conformance %s: remediation %q", r.ID, r.Remediation)
		}
	}
	if walked < 80 {
		t.Errorf("walked %d remediations; the data has more", walked)
	}

	// Every failure of every supported recipe prints its fix.
	empty := NewCluster("empty")
	ev := t.TempDir()
	for _, q := range coverage(t) {
		res, err := c.Resolve(q)
		if err != nil {
			t.Fatal(err)
		}
		r := res.Recipe
		bad, err := Validate(r, &Snapshot{Kind: KindSnapshot})
		if err != nil {
			t.Fatal(err)
		}
		dep := ValidateDeployment(r, empty)
		perf := ValidatePerformance(r, &NCCLResult{Nodes: 1, Ranks: 8, MaxBytes: 1 << 34, BusBW: 1, Wrong: 1}, "t")
		confRep, err := ValidateConformance(r, conf, ev)
		if err != nil {
			t.Fatal(err)
		}
		for _, rep := range []*Report{bad, dep, perf, confRep} {
			for _, ch := range rep.Checks {
				if ch.Status == StatusFailed && ch.Remediation == "" {
					t.Errorf("%s %s: failed check %s has no remediation", r.Name, rep.Phase, ch.Name)
				}
			}
		}
		if dep.Failed == 0 || dep.Failed != len(dep.Checks) {
			t.Errorf("%s: an empty cluster failed %d of %d deployment checks", r.Name, dep.Failed, len(dep.Checks))
		}
	}
}

// TestEveryComponentHasChecks: the deployment phase has something to check
// for every component that runs pods or CRDs.
func TestEveryComponentHasChecks(t *testing.T) {
	c := mustLoad(t, "")
	seen := map[string]bool{}
	for _, q := range coverage(t) {
		res, err := c.Resolve(q)
		if err != nil {
			t.Fatal(err)
		}
		for name, comp := range res.Recipe.Components {
			if seen[name] {
				continue
			}
			seen[name] = true
			// The Skyhook itself is checked through its operator.
			if len(comp.Checks) == 0 && name != "skyhook-customizations" {
				t.Errorf("component %s has no deployment checks", name)
			}
		}
	}
}
