package engines

import (
	"os"
	"path/filepath"

	"github.com/nvbind/nvbind/internal/spectrust"
)

// specTrust reports the CDI spec files nvbind-runtime, running as root,
// skips because someone other than root can change them (or a directory
// above them): through such a file a local user could make every GPU
// container run a hook of theirs as root on the host.
func (d *doctor) specTrust() {
	const name = "cdi-spec-trust"
	cfg := d.opts.Config
	dirs := append([]string(nil), cfg.CDI.SpecDirs...)
	if cfg.CDI.JITSpec != "" {
		dirs = append(dirs, filepath.Dir(cfg.CDI.JITSpec))
	}
	c := &spectrust.Checker{}
	seen, bad := map[string]bool{}, 0
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			path := filepath.Join(dir, e.Name())
			if e.IsDir() || (ext != ".json" && ext != ".yaml") || seen[path] {
				continue
			}
			seen[path] = true
			if err := c.Check(path); err != nil {
				bad++
				d.add(name, Fail, "chown root and chmod go-w the file and the directories above it, or remove it",
					"%s is skipped by nvbind-runtime: %v", path, err)
			}
		}
	}
	if bad == 0 {
		d.add(name, Pass, "", "every CDI spec file is owned by root and writable only by root")
	}
}
