package engines

import (
	"fmt"
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
		path := filepath.Join(CRIODropInDir, crioDropIn)
		p := &plan{path: path, owned: true, notes: notes}
		var err error
		if p.old, p.exists, err = readConfig(path); err != nil {
			return nil, err
		}
		if !configure {
			p.remove, p.unchanged = p.exists, !p.exists
			return p, nil
		}
		d, _ := parseTOMLDoc([]byte(dropInHeader), false)
		if err := crioSet(d, opts.RuntimePath); err != nil {
			return nil, err
		}
		p.new = d.text
		p.unchanged = p.exists && string(p.old) == string(p.new)
		return p, nil
	}
	path := opts.ConfigPath
	old, exists, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	doc, err := parseTOMLDoc(old, true)
	if err != nil {
		return nil, &ParseError{Path: path, Err: err}
	}
	p := &plan{path: path, old: old, exists: exists, notes: notes}
	if configure {
		err = crioSet(doc, opts.RuntimePath)
	} else {
		_, err = doc.removeMarked()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if string(doc.text) == string(old) && (exists || !configure) {
		p.unchanged = true
		return p, nil
	}
	p.new = doc.text
	return p, nil
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
	for _, f := range files {
		data, exists, err := readConfig(f)
		if err != nil || !exists {
			continue
		}
		d, err := parseTOMLDoc(data, false)
		if err != nil {
			return "", &ParseError{Path: f, Err: err}
		}
		if v, ok := d.value(append(slices.Clone(crioRuntimeTable), "runtime_path")...); ok {
			if s, ok := v.(string); ok {
				found = s
			}
		}
	}
	return found, nil
}
