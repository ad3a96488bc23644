package helm

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLoadMatchesTheChartDir: the embedded chart is the chart directory,
// file for file.
func TestLoadMatchesTheChartDir(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "nvbind" || c.Version == "" {
		t.Errorf("name %q version %q", c.Name, c.Version)
	}
	n := 0
	filepath.WalkDir("nvbind", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		rel, _ := filepath.Rel("nvbind", p)
		want, _ := os.ReadFile(p)
		if got, ok := c.Files[filepath.ToSlash(rel)]; !ok || string(got) != string(want) {
			t.Errorf("embedded %s differs from the file", rel)
		}
		return nil
	})
	if n != len(c.Files) || c.Files["templates/daemonset.yaml"] == nil {
		t.Errorf("embedded %d files, the dir has %d", len(c.Files), n)
	}
}
