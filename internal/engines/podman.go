package engines

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// podmanFiles are the containers.conf files Podman reads as root, in order;
// later files override earlier ones key by key.
type podmanFiles struct {
	Vendor    string // shipped defaults
	Main      string
	DropInDir string
}

func defaultPodmanFiles() podmanFiles {
	return podmanFiles{
		Vendor:    "/usr/share/containers/containers.conf",
		Main:      "/etc/containers/containers.conf",
		DropInDir: "/etc/containers/containers.conf.d",
	}
}

const podmanDropIn = "99-nvbind.conf"

// podmanJSONNames are the names Podman may know nvbind-runtime by: the
// configured runtime name, and the file name when run as --runtime PATH.
// Podman passes --log-format=json --log FILE only to runtimes listed in
// runtime_supports_json, and shows their errors from that log.
var podmanJSONNames = []string{RuntimeName, "nvbind-runtime"}

// podmanDefaultJSON is Podman's built-in runtime_supports_json, kept when
// nvbind has to write the key: Podman 4 replaces a list from an earlier file
// instead of appending to it.
var podmanDefaultJSON = []string{"crun", "crun-vm", "runc", "kata", "runsc", "youki", "krun", "ocijail"}

var (
	podmanJSONKey  = []string{"engine"}
	podmanRuntimes = []string{"engine", "runtimes"}
)

// podmanPlan registers [engine.runtimes] nvbind = [PATH] and adds nvbind to
// runtime_supports_json. By default it writes its own drop-in in
// containers.conf.d (Podman reads drop-ins for root and rootless users, and
// the user's files stay untouched); --config FILE edits FILE in place, as
// used with CONTAINERS_CONF (which, when set, is the default FILE: Podman
// then reads no other).
func podmanPlan(opts Options, configure bool, files podmanFiles) (*plan, error) {
	notes := []string{"Podman reads containers.conf on every command: no restart needed",
		"run: podman run --runtime " + RuntimeName + " -e NVIDIA_VISIBLE_DEVICES=0 ...",
		"nvbind-runtime started by Podman (through conmon) does not see your environment; it reads /etc/nvbind/config.toml"}
	if !configure {
		notes = notes[:1]
	}
	if opts.ConfigPath == "" {
		// Podman then reads that file alone, drop-ins included.
		opts.ConfigPath = os.Getenv("CONTAINERS_CONF")
	}
	if opts.ConfigPath != "" {
		return podmanEdit(opts, configure, notes)
	}
	path := filepath.Join(files.DropInDir, podmanDropIn)
	p := &plan{path: path, owned: true, notes: notes}
	var err error
	if p.old, p.exists, err = readConfig(path); err != nil {
		return nil, err
	}
	if !configure {
		p.remove, p.unchanged = p.exists, !p.exists
		return p, nil
	}
	base, err := podmanEffectiveJSON(files)
	if err != nil {
		return nil, err
	}
	d, _ := parseTOMLDoc([]byte(dropInHeader), false)
	if err := podmanSet(d, opts.RuntimePath, base); err != nil {
		return nil, err
	}
	p.new = d.text
	p.unchanged = p.exists && string(p.old) == string(p.new)
	return p, nil
}

func podmanEdit(opts Options, configure bool, notes []string) (*plan, error) {
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
		if err := podmanSet(doc, opts.RuntimePath, podmanDefaultJSON); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	} else {
		if _, err := doc.removeFromArray(podmanJSONKey, "runtime_supports_json", podmanJSONNames); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if _, err := doc.removeMarked(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if string(doc.text) == string(old) && (exists || !configure) {
		p.unchanged = true
		return p, nil
	}
	p.new = doc.text
	return p, nil
}

func podmanSet(d *tomlDoc, runtimePath string, base []string) error {
	if _, err := d.addToArray(podmanJSONKey, "runtime_supports_json", podmanJSONNames, base); err != nil {
		return err
	}
	_, err := d.set(podmanRuntimes, RuntimeName, tomlStrings([]string{runtimePath}), []any{runtimePath})
	return err
}

// podmanChain lists the files Podman reads, in order, without nvbind's own
// drop-in. CONTAINERS_CONF replaces them all.
func podmanChain(files podmanFiles, withOwn bool) []string {
	if env := os.Getenv("CONTAINERS_CONF"); env != "" {
		return []string{env}
	}
	chain := []string{files.Vendor, files.Main}
	drops, _ := filepath.Glob(filepath.Join(files.DropInDir, "*.conf"))
	slices.Sort(drops)
	for _, f := range drops {
		if withOwn || filepath.Base(f) != podmanDropIn {
			chain = append(chain, f)
		}
	}
	return chain
}

// podmanEffectiveJSON is runtime_supports_json as Podman sees it without
// nvbind's drop-in.
func podmanEffectiveJSON(files podmanFiles) ([]string, error) {
	list := podmanDefaultJSON
	for _, f := range podmanChain(files, false) {
		data, exists, err := readConfig(f)
		if err != nil || !exists {
			continue
		}
		d, err := parseTOMLDoc(data, false)
		if err != nil {
			return nil, &ParseError{Path: f, Err: err}
		}
		if v, ok := d.value(append(slices.Clone(podmanJSONKey), "runtime_supports_json")...); ok {
			if ss, ok := anyStrings(v); ok {
				list = ss
			}
		}
	}
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return slices.Contains(podmanJSONNames, s) }), nil
}

// podmanRegistered returns the path of the nvbind runtime Podman would use,
// and the last file that set it.
func podmanRegistered(files podmanFiles) (path, file string, err error) {
	for _, f := range podmanChain(files, true) {
		data, exists, rerr := readConfig(f)
		if rerr != nil || !exists {
			continue
		}
		d, perr := parseTOMLDoc(data, false)
		if perr != nil {
			return "", f, &ParseError{Path: f, Err: perr}
		}
		if v, ok := d.value(append(slices.Clone(podmanRuntimes), RuntimeName)...); ok {
			if ss, ok := anyStrings(v); ok && len(ss) > 0 {
				path, file = ss[0], f
			}
		}
	}
	return path, file, nil
}
