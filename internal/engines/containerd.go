package engines

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ContainerdConfig is containerd's main config file.
const ContainerdConfig = "/etc/containerd/config.toml"

// containerdDropIn is the file nvbind owns in a directory the main config
// imports.
const containerdDropIn = "99-nvbind.toml"

// dropInHeader opens every drop-in nvbind writes.
const dropInHeader = "# Written by `nvbind runtime configure`; `nvbind runtime unconfigure` removes this file.\n"

// defaultContainerdVersion is the config version for a file nvbind creates:
// 3 for containerd 2.x, else 2 (which containerd 2.x also reads).
var defaultContainerdVersion = func() int {
	if major(binaryVersion("containerd")) >= 2 {
		return 3
	}
	return 2
}

// containerdRuntimeTable is the CRI runtime handler table for a config
// version: the CRI plugin moved to io.containerd.cri.v1.runtime in version 3.
func containerdRuntimeTable(version int) []string {
	plugin := "io.containerd.grpc.v1.cri"
	if version >= 3 {
		plugin = "io.containerd.cri.v1.runtime"
	}
	return []string{"plugins", plugin, "containerd", "runtimes", RuntimeName}
}

// containerdPlan registers a runtime handler "nvbind" of type
// io.containerd.runc.v2 whose BinaryName is nvbind-runtime.
//
// Where it goes: config version 3 (containerd 2.x) merges imported files key
// by key, so when the main file imports a glob such as conf.d/*.toml nvbind
// writes its own drop-in there and leaves the main file alone. Version 2
// (containerd 1.x) replaces a whole plugin section with the imported one,
// so a drop-in would drop every other CRI setting of the main file; nvbind
// then adds its lines to the main file, marked so unconfigure can find them.
func containerdPlan(opts Options, configure bool, newVersion func() int) (*plan, error) {
	main := opts.ConfigPath
	if main == "" {
		main = ContainerdConfig
	}
	old, exists, err := readConfig(main)
	if err != nil {
		return nil, err
	}
	doc, err := parseTOMLDoc(old, true)
	if err != nil {
		return nil, &ParseError{Path: main, Err: err}
	}
	version, err := containerdVersion(doc, newVersion)
	if err != nil {
		return nil, &ParseError{Path: main, Err: err}
	}
	table := containerdRuntimeTable(version)
	notes := []string{"restart containerd to apply: systemctl restart containerd",
		"Kubernetes selects the handler with a RuntimeClass: nvbind runtime configure --runtime containerd --print-runtimeclass | kubectl apply -f -"}
	if !configure {
		notes = notes[:1]
	}

	if dir := importDir(main, doc); version >= 3 && dir != "" {
		return dropInPlan(filepath.Join(dir, containerdDropIn), dropInHeader+"version = 3\n", configure, notes, func(d *tomlDoc) error {
			return containerdSet(d, table, opts.RuntimePath)
		})
	}

	p := &plan{path: main, old: old, exists: exists, notes: notes}
	var changed bool
	if configure {
		if _, ok := doc.value("version"); !ok {
			doc.mark = false // a version line must outlive unconfigure
			if _, err := doc.set(nil, "version", fmt.Sprint(version), int64(version)); err != nil {
				return nil, err
			}
			doc.mark = true
		}
		if err := containerdSet(doc, table, opts.RuntimePath); err != nil {
			return nil, fmt.Errorf("%s: %w; add it by hand:\n%s", main, err, containerdSnippet(table, opts.RuntimePath))
		}
		changed = string(doc.text) != string(old) || !exists
		if version == 2 {
			if f := criOverride(main, doc); f != "" {
				p.notes = append(p.notes, fmt.Sprintf("warning: %s sets the CRI plugin too and containerd 1.x uses only one file's CRI section: add the nvbind runtime there as well", f))
			}
		}
	} else if changed, err = doc.removeMarked(); err != nil {
		return nil, fmt.Errorf("%s: %w", main, err)
	}
	if !changed {
		p.unchanged = true
		return p, nil
	}
	p.new = doc.text
	return p, nil
}

func containerdSet(d *tomlDoc, table []string, runtimePath string) error {
	if _, err := d.set(table, "runtime_type", tomlString("io.containerd.runc.v2"), "io.containerd.runc.v2"); err != nil {
		return err
	}
	_, err := d.set(append(slices.Clone(table), "options"), "BinaryName", tomlString(runtimePath), runtimePath)
	return err
}

func containerdSnippet(table []string, runtimePath string) string {
	return fmt.Sprintf("[%s]\n  runtime_type = \"io.containerd.runc.v2\"\n[%s.options]\n  BinaryName = %s\n",
		formatPath(table), formatPath(table), tomlString(runtimePath))
}

// containerdVersion reads the config version. A file without one is
// version 1, which nvbind does not write; an empty file gets newVersion.
func containerdVersion(doc *tomlDoc, newVersion func() int) (int, error) {
	v, ok := doc.value("version")
	if !ok {
		if len(doc.exprs) == 0 {
			return newVersion(), nil
		}
		return 0, fmt.Errorf("no version key: config version 1 is not supported; add `version = 2` and use full plugin names (see `containerd config default`)")
	}
	n, ok := v.(int64)
	if !ok || n < 2 || n > 3 {
		return 0, fmt.Errorf("config version %v is not supported (2 or 3)", v)
	}
	return int(n), nil
}

// importDir returns the directory of the first glob the config imports that
// would pick up nvbind's drop-in, or "".
func importDir(main string, doc *tomlDoc) string {
	for _, pattern := range importPatterns(main, doc) {
		dir := filepath.Dir(pattern)
		if strings.ContainsAny(pattern, "*?[") && !strings.ContainsAny(dir, "*?[") {
			if ok, _ := filepath.Match(pattern, filepath.Join(dir, containerdDropIn)); ok {
				return dir
			}
		}
	}
	return ""
}

// importPatterns resolves `imports` the way containerd does: relative paths
// start at the main file's directory.
func importPatterns(main string, doc *tomlDoc) []string {
	v, _ := doc.value("imports")
	list, _ := anyStrings(v)
	var out []string
	for _, p := range list {
		p = filepath.Clean(p)
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(main), p)
		}
		out = append(out, p)
	}
	return out
}

// importedFiles lists the files the imports name, in containerd's order.
func importedFiles(main string, doc *tomlDoc) []string {
	var out []string
	for _, p := range importPatterns(main, doc) {
		if strings.ContainsAny(p, "*?[") {
			m, _ := filepath.Glob(p)
			out = append(out, m...)
		} else {
			out = append(out, p)
		}
	}
	return out
}

// criOverride names an imported file that defines the CRI plugin section.
func criOverride(main string, doc *tomlDoc) string {
	for _, f := range importedFiles(main, doc) {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if d, err := parseTOMLDoc(data, false); err == nil {
			if _, ok := d.value("plugins", "io.containerd.grpc.v1.cri"); ok {
				return f
			}
		}
	}
	return ""
}

// containerdRegistered returns the BinaryName of the nvbind handler in the
// main config or a file it imports.
func containerdRegistered(main string) (string, error) {
	data, exists, err := readConfig(main)
	if err != nil || !exists {
		return "", err
	}
	doc, err := parseTOMLDoc(data, false)
	if err != nil {
		return "", err
	}
	docs := []*tomlDoc{doc}
	for _, f := range importedFiles(main, doc) {
		if data, err := os.ReadFile(f); err == nil {
			if d, err := parseTOMLDoc(data, false); err == nil {
				docs = append(docs, d)
			}
		}
	}
	found := ""
	for _, d := range docs {
		for _, v := range []int{2, 3} {
			if s, ok := d.value(append(containerdRuntimeTable(v), "options", "BinaryName")...); ok {
				if str, ok := s.(string); ok {
					found = str
				}
			}
		}
	}
	return found, nil
}

// RuntimeClassYAML is the Kubernetes RuntimeClass that selects the nvbind
// handler (containerd or CRI-O).
func RuntimeClassYAML() string {
	return `apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: ` + RuntimeName + `
handler: ` + RuntimeName + `
`
}
