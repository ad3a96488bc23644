package engines

import (
	"fmt"
)

// DockerConfig is dockerd's config file.
const DockerConfig = "/etc/docker/daemon.json"

// dockerPlan edits daemon.json: runtimes.nvbind.path, and on request
// default-runtime and features.cdi. Keys keep their order; JSON has no
// comments to keep.
func dockerPlan(opts Options, configure bool) (*plan, error) {
	path := opts.ConfigPath
	if path == "" {
		path = DockerConfig
	}
	old, exists, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	obj, err := parseJSONObject(old)
	if err != nil {
		return nil, &ParseError{Path: path, Err: err}
	}
	p := &plan{path: path, old: old, exists: exists}
	var changed bool
	if configure {
		changed, err = dockerAdd(obj, opts)
	} else {
		changed, err = dockerRemove(obj, opts)
	}
	if err != nil {
		return nil, &ParseError{Path: path, Err: err}
	}
	if !changed {
		p.unchanged = true
		return p, nil
	}
	if p.new, err = obj.format(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.notes = append(p.notes, "reload dockerd to apply: systemctl reload docker (or kill -HUP <dockerd pid>)")
	if opts.CDI && configure {
		p.notes = append(p.notes, "features.cdi needs Docker 25 or newer and a dockerd restart: systemctl restart docker")
	}
	return p, nil
}

func dockerAdd(obj *jsonObject, opts Options) (bool, error) {
	changed := false
	runtimes, err := obj.object("runtimes")
	if err != nil {
		return false, err
	}
	nv, err := runtimes.object(RuntimeName)
	if err != nil {
		return false, fmt.Errorf("runtimes: %w", err)
	}
	var cur string
	if !nv.get("path", &cur) || cur != opts.RuntimePath {
		if err := nv.set("path", opts.RuntimePath); err != nil {
			return false, err
		}
		if err := runtimes.set(RuntimeName, nv); err != nil {
			return false, err
		}
		if err := obj.set("runtimes", runtimes); err != nil {
			return false, err
		}
		changed = true
	}
	if opts.SetAsDefault {
		var def string
		if !obj.get("default-runtime", &def) || def != RuntimeName {
			if err := obj.set("default-runtime", RuntimeName); err != nil {
				return false, err
			}
			changed = true
		}
	}
	if opts.CDI {
		features, err := obj.object("features")
		if err != nil {
			return false, err
		}
		var on bool
		if !features.get("cdi", &on) || !on {
			if err := features.set("cdi", true); err != nil {
				return false, err
			}
			if err := obj.set("features", features); err != nil {
				return false, err
			}
			changed = true
		}
	}
	return changed, nil
}

// dockerRemove undoes dockerAdd: the nvbind runtime, default-runtime when it
// names nvbind, and features.cdi only when asked (other CDI devices may use
// it).
func dockerRemove(obj *jsonObject, opts Options) (bool, error) {
	changed := false
	if obj.has("runtimes") {
		runtimes, err := obj.object("runtimes")
		if err != nil {
			return false, err
		}
		if runtimes.has(RuntimeName) {
			runtimes.remove(RuntimeName)
			if len(runtimes.keys) == 0 {
				obj.remove("runtimes")
			} else if err := obj.set("runtimes", runtimes); err != nil {
				return false, err
			}
			changed = true
		}
	}
	var def string
	if obj.get("default-runtime", &def) && def == RuntimeName {
		obj.remove("default-runtime")
		changed = true
	}
	if opts.CDI && obj.has("features") {
		features, err := obj.object("features")
		if err != nil {
			return false, err
		}
		if features.has("cdi") {
			features.remove("cdi")
			if len(features.keys) == 0 {
				obj.remove("features")
			} else if err := obj.set("features", features); err != nil {
				return false, err
			}
			changed = true
		}
	}
	return changed, nil
}

// dockerRegistered returns the nvbind runtime path daemon.json names.
func dockerRegistered(data []byte) (string, error) {
	obj, err := parseJSONObject(data)
	if err != nil {
		return "", err
	}
	runtimes, err := obj.object("runtimes")
	if err != nil {
		return "", err
	}
	nv, err := runtimes.object(RuntimeName)
	if err != nil {
		return "", err
	}
	var path string
	nv.get("path", &path)
	return path, nil
}
