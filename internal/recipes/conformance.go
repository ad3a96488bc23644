package recipes

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"
)

// KindConformance holds the AI conformance requirement list.
const KindConformance = "Conformance"

// Requirement is one requirement of the CNCF Kubernetes AI Conformance
// program.
type Requirement struct {
	ID          string   `json:"id"`
	Category    string   `json:"category"`
	Level       string   `json:"level"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	ProvidedBy  []string `json:"providedBy"`
	Remediation string   `json:"remediation"`
}

// Conformance is the requirement list of one program version.
type Conformance struct {
	APIVersion   string        `json:"apiVersion"`
	Kind         string        `json:"kind"`
	Version      string        `json:"version"`
	Requirements []Requirement `json:"requirements"`
}

var (
	conformanceOnce sync.Once
	conformance     *Conformance
	conformanceErr  error
)

// LoadConformance reads the embedded requirement list.
func LoadConformance() (*Conformance, error) {
	conformanceOnce.Do(func() {
		data, err := embedded.ReadFile("data/conformance.yaml")
		if err != nil {
			conformanceErr = err
			return
		}
		var c Conformance
		if err := yaml.UnmarshalStrict(data, &c); err != nil {
			conformanceErr = fmt.Errorf("conformance.yaml: %w", err)
			return
		}
		if c.Kind != KindConformance || c.APIVersion != APIVersion || len(c.Requirements) == 0 {
			conformanceErr = fmt.Errorf("conformance.yaml: want kind %s, apiVersion %s and requirements", KindConformance, APIVersion)
			return
		}
		for _, r := range c.Requirements {
			if r.ID == "" || r.Remediation == "" || (r.Level != "MUST" && r.Level != "SHOULD") {
				conformanceErr = fmt.Errorf("conformance.yaml: requirement %q needs an id, a MUST or SHOULD level and a remediation", r.ID)
				return
			}
		}
		conformance = &c
	})
	return conformance, conformanceErr
}

// ValidateConformance reports, for each requirement, the evidence found in
// dir (a file or directory named after the requirement's id, with any
// extension) and the recipe components that provide it. A MUST without
// evidence fails; a SHOULD without evidence is skipped.
func ValidateConformance(r *Recipe, c *Conformance, dir string) (*Report, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("evidence directory: %w", err)
	}
	evidence := map[string][]string{}
	for _, e := range entries {
		name := e.Name()
		id := strings.TrimSuffix(name, filepath.Ext(name))
		if e.IsDir() {
			id = name
			// A directory counts when it holds at least one non-empty file.
			found := false
			_ = filepath.WalkDir(filepath.Join(dir, name), func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if fi, err := d.Info(); err == nil && fi.Size() > 0 {
						found = true
					}
				}
				return nil
			})
			if !found {
				continue
			}
			name += "/"
		} else if fi, err := e.Info(); err != nil || fi.Size() == 0 {
			continue // an empty file is no evidence
		}
		evidence[id] = append(evidence[id], name)
	}
	rep := &Report{Recipe: r.Name, Phase: PhaseConformance, Snapshot: dir}
	for _, req := range c.Requirements {
		var providers []string
		for _, p := range req.ProvidedBy {
			if _, ok := r.Components[p]; ok {
				providers = append(providers, p)
			}
		}
		ch := Check{
			Name: req.ID, Type: req.Level, Required: req.Level == "MUST",
			Expected: "evidence (" + req.Level + ")", Source: strings.Join(providers, ", "),
		}
		if ch.Source == "" {
			ch.Source = "-"
		}
		files := evidence[req.ID]
		slices.Sort(files)
		switch {
		case len(files) > 0:
			ch.Status, ch.Actual = StatusPassed, strings.Join(files, ", ")
		case req.Level == "MUST":
			ch.Status, ch.Remediation = StatusFailed, req.Remediation
			ch.Message = req.Title + ": no evidence"
			if len(providers) == 0 {
				ch.Message += "; no component of the recipe provides it"
			}
		default:
			ch.Status, ch.Message = StatusSkipped, req.Title+": no evidence (SHOULD)"
		}
		rep.add(ch)
	}
	return rep, nil
}
