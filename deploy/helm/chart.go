// Package helm carries nvbind's Helm chart (deploy/helm/nvbind) inside the
// nvbind binary, so `nvbind bundle` writes it into a cluster bundle and the
// bundle installs it with no chart registry.
package helm

import (
	"embed"
	"fmt"
	"io/fs"

	"sigs.k8s.io/yaml"
)

//go:embed all:nvbind
var chartFS embed.FS

// Chart is the embedded chart.
type Chart struct {
	Name, Version string
	// Files are the chart's files by slash path under the chart directory
	// (Chart.yaml, values.yaml, templates/daemonset.yaml, ...).
	Files map[string][]byte
}

// Load reads the embedded chart.
func Load() (*Chart, error) {
	sub, err := fs.Sub(chartFS, "nvbind")
	if err != nil {
		return nil, err
	}
	c := &Chart{Files: map[string][]byte{}}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(sub, p)
		c.Files[p] = data
		return err
	})
	if err != nil {
		return nil, err
	}
	var meta struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := yaml.Unmarshal(c.Files["Chart.yaml"], &meta); err != nil {
		return nil, fmt.Errorf("nvbind chart: Chart.yaml: %w", err)
	}
	c.Name, c.Version = meta.Name, meta.Version
	return c, nil
}
