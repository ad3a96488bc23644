package recipes

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Combination is one supported (service, accelerator, os, intent).
type Combination struct {
	Service, Accelerator, OS, Intent string
}

// Name is the combination's recipe name without platform or node count.
func (c Combination) Name() string {
	return strings.Join([]string{c.Service, c.Accelerator, c.OS, c.Intent}, "-")
}

// supportRow is one row of a Support file: every combination of its lists
// is supported; the first OS is the default for the row.
type supportRow struct {
	Service     string   `json:"service"`
	Accelerator []string `json:"accelerator"`
	OS          []string `json:"os"`
	Intent      []string `json:"intent"`
	// Why names the instances or images the row stands for.
	Why string `json:"why"`
}

type supportFile struct {
	APIVersion   string       `json:"apiVersion"`
	Kind         string       `json:"kind"`
	Combinations []supportRow `json:"combinations"`
}

func (c *Catalog) addSupport(data []byte) error {
	var f supportFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return err
	}
	if f.APIVersion != APIVersion {
		return fmt.Errorf("apiVersion is %q, want %s", f.APIVersion, APIVersion)
	}
	for i, row := range f.Combinations {
		if row.Service == "" || len(row.Accelerator) == 0 || len(row.OS) == 0 || len(row.Intent) == 0 {
			return fmt.Errorf("combinations[%d]: service, accelerator, os and intent are all required", i)
		}
		for _, a := range row.Accelerator {
			for _, o := range row.OS {
				for _, in := range row.Intent {
					cb := Combination{row.Service, a, o, in}
					if !slices.Contains(c.Support, cb) {
						c.Support = append(c.Support, cb)
					}
				}
			}
		}
	}
	return nil
}

// checkSupport checks every supported combination uses known criteria
// values.
func (c *Catalog) checkSupport() error {
	if len(c.Support) == 0 {
		return fmt.Errorf("overlays: no supported combinations (a kind: %s file is missing)", KindSupport)
	}
	for _, cb := range c.Support {
		for _, f := range []struct {
			field, value string
			allowed      []string
		}{
			{"service", cb.Service, c.Enums.Service}, {"accelerator", cb.Accelerator, c.Enums.Accelerator},
			{"os", cb.OS, c.Enums.OS}, {"intent", cb.Intent, c.Enums.Intent},
		} {
			if !slices.Contains(f.allowed, f.value) {
				return fmt.Errorf("supported combination %s: %s %q is not one of %s", cb.Name(), f.field, f.value, strings.Join(f.allowed, ", "))
			}
		}
	}
	for _, t := range c.Thresholds {
		if !slices.Contains(c.Enums.Accelerator, t.Accelerator) {
			return fmt.Errorf("performance threshold: accelerator %q is not one of %s", t.Accelerator, strings.Join(c.Enums.Accelerator, ", "))
		}
	}
	return nil
}

// defaultOS is the OS of the first supported combination for the query's
// service, accelerator and intent, or "" when there is none.
func (c *Catalog) defaultOS(q Query) string {
	for _, cb := range c.Support {
		if cb.Service == q.Service && cb.Accelerator == q.Accelerator && cb.Intent == q.Intent {
			return cb.OS
		}
	}
	return ""
}

// Supported reports whether the query's combination is supported; if not,
// the error names the nearest supported combinations: those that differ in
// the fewest criteria, in table order.
func (c *Catalog) Supported(q Query) error {
	want := Combination{q.Service, q.Accelerator, q.OS, q.Intent}
	if slices.Contains(c.Support, want) {
		return nil
	}
	best, nearest := 5, []string(nil)
	for _, cb := range c.Support {
		d := 0
		for _, p := range [][2]string{{cb.Service, want.Service}, {cb.Accelerator, want.Accelerator}, {cb.OS, want.OS}, {cb.Intent, want.Intent}} {
			if p[0] != p[1] {
				d++
			}
		}
		switch {
		case d < best:
			best, nearest = d, []string{cb.Name()}
		case d == best:
			nearest = append(nearest, cb.Name())
		}
	}
	const most = 6
	if len(nearest) > most {
		nearest = append(nearest[:most], "...")
	}
	os := q.OS
	if os == "" {
		os = "(no supported os)"
	}
	return fmt.Errorf("%s + %s + %s + %s is not a supported combination; nearest supported: %s",
		q.Service, q.Accelerator, os, q.Intent, strings.Join(nearest, ", "))
}

// Threshold is one row of the performance table.
type Threshold struct {
	Accelerator string `json:"accelerator"`
	Fabric      string `json:"fabric"`
	Performance
}

type performanceFile struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Thresholds []Threshold `json:"thresholds"`
}

func (c *Catalog) addThresholds(data []byte) error {
	var f performanceFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return err
	}
	if f.APIVersion != APIVersion {
		return fmt.Errorf("apiVersion is %q, want %s", f.APIVersion, APIVersion)
	}
	for i, t := range f.Thresholds {
		switch {
		case t.Accelerator == "" || t.Fabric == "":
			return fmt.Errorf("thresholds[%d]: accelerator and fabric are required", i)
		case t.MinBusBandwidth <= 0 || t.TolerancePercent < 0 || t.TolerancePercent >= 100:
			return fmt.Errorf("thresholds[%d]: minBusBandwidthGBps must be positive and tolerancePercent in [0, 100)", i)
		case t.Test == "" || t.MessageSize == "" || t.MinNodes < 2 || t.Basis == "" || t.Remediation == "":
			return fmt.Errorf("thresholds[%d]: test, messageSize, minNodes (>= 2), basis and remediation are required", i)
		}
		// A later file's row for the same pair replaces the earlier one.
		c.Thresholds = slices.DeleteFunc(c.Thresholds, func(o Threshold) bool {
			return o.Accelerator == t.Accelerator && o.Fabric == t.Fabric
		})
		c.Thresholds = append(c.Thresholds, t)
	}
	return nil
}

// threshold returns the performance bar for an accelerator on a fabric.
func (c *Catalog) threshold(accelerator, fabric string) *Performance {
	for _, t := range c.Thresholds {
		if t.Accelerator == accelerator && t.Fabric == fabric {
			p := t.Performance
			return &p
		}
	}
	return nil
}
