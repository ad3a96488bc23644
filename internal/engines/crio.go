package engines

import (
	"path/filepath"
	"slices"
)

// CRI-O's config file and its drop-in directory.
const (
	CRIOConfig    = "/etc/crio/crio.conf"
	CRIODropInDir = "/etc/crio/crio.conf.d"
	crioDropIn    = "99-nvbind.conf"
)

var crioRuntimeTable = []string{"crio", "runtime", "runtimes", RuntimeName}

// crioPlan registers [crio.runtime.runtimes.nvbind]. CRI-O merges its
// drop-ins key by key, so by default nvbind writes its own file in
// crio.conf.d; --config FILE edits FILE in place instead.
func crioPlan(opts Options, configure bool) (*plan, error) {
	notes := []string{"restart CRI-O to apply: systemctl restart crio",
		"Kubernetes selects the handler with a RuntimeClass: nvbind runtime configure --runtime crio --print-runtimeclass | kubectl apply -f -"}
	if !configure {
		notes = notes[:1]
	}
	if opts.ConfigPath == "" {
		return dropInPlan(filepath.Join(CRIODropInDir, crioDropIn), dropInHeader, configure, notes, func(d *tomlDoc) error {
			return crioSet(d, opts.RuntimePath)
		})
	}
	return editPlan(opts.ConfigPath, configure, notes, func(d *tomlDoc) error {
		if configure {
			return crioSet(d, opts.RuntimePath)
		}
		_, err := d.removeMarked()
		return err
	})
}

func crioSet(d *tomlDoc, runtimePath string) error {
	if _, err := d.set(crioRuntimeTable, "runtime_path", tomlString(runtimePath), runtimePath); err != nil {
		return err
	}
	_, err := d.set(crioRuntimeTable, "runtime_type", tomlString("oci"), "oci")
	return err
}

// crioRegistered returns the runtime_path of the nvbind handler in CRI-O's
// config or its drop-ins (later files win).
func crioRegistered(main, dropInDir string) (string, error) {
	files := []string{main}
	drops, _ := filepath.Glob(filepath.Join(dropInDir, "*.conf"))
	slices.Sort(drops)
	files = append(files, drops...)
	found := ""
	err := eachTOMLFile(files, func(_ string, d *tomlDoc) {
		if v, ok := d.value(append(slices.Clone(crioRuntimeTable), "runtime_path")...); ok {
			if s, ok := v.(string); ok {
				found = s
			}
		}
	})
	if err != nil {
		return "", err
	}
	return found, nil
}
