package engines

import (
	"errors"
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
		return editPlan(opts.ConfigPath, configure, notes, func(d *tomlDoc) error {
			if configure {
				return podmanSet(d, opts.RuntimePath, podmanDefaultJSON)
			}
			if _, err := d.removeFromArray(podmanJSONKey, "runtime_supports_json", podmanJSONNames); err != nil {
				return err
			}
			_, err := d.removeMarked()
			return err
		})
	}
	return dropInPlan(filepath.Join(files.DropInDir, podmanDropIn), dropInHeader, configure, notes, func(d *tomlDoc) error {
		base, err := podmanEffectiveJSON(files)
		if err != nil {
			return err
		}
		return podmanSet(d, opts.RuntimePath, base)
	})
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
	err := eachTOMLFile(podmanChain(files, false), func(_ string, d *tomlDoc) {
		if v, ok := d.value(append(slices.Clone(podmanJSONKey), "runtime_supports_json")...); ok {
			if ss, ok := anyStrings(v); ok {
				list = ss
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return slices.Contains(podmanJSONNames, s) }), nil
}

// podmanRegistered returns the path of the nvbind runtime Podman would use,
// and the last file that set it.
func podmanRegistered(files podmanFiles) (path, file string, err error) {
	err = eachTOMLFile(podmanChain(files, true), func(f string, d *tomlDoc) {
		if v, ok := d.value(append(slices.Clone(podmanRuntimes), RuntimeName)...); ok {
			if ss, ok := anyStrings(v); ok && len(ss) > 0 {
				path, file = ss[0], f
			}
		}
	})
	var perr *ParseError
	if errors.As(err, &perr) {
		return "", perr.Path, err // the file that stops Podman too
	}
	return path, file, nil
}
