package engines

import "strings"

// hookModes reports which of nvbind's doors are open besides the runtime
// (the hooks.d file, the docker --gpus link) and warns where two would
// inject into the same container.
func (d *doctor) hookModes() {
	dirs := d.opts.HookDirs
	if dirs == nil {
		dirs = HookDirs
	}
	m := DetectHookModes(dirs)
	registered := map[string]bool{}
	for _, e := range d.opts.Engines {
		registered[e.Name] = e.Registered
	}
	others := ""
	if len(m.Others) > 0 {
		others = "; also " + strings.Join(m.Others, ", ")
	}
	switch {
	case m.HooksFile == "" && others != "":
		d.add("mode-hook", Pass, "", "hook mode: %s", strings.TrimPrefix(others, "; also "))
	case m.HooksFile == "":
		d.add("mode-hook", Skip, "", "no nvbind hooks.d file (Podman, CRI-O: nvbind runtime configure --runtime podman --mode hook)")
	case registered[Podman] && m.Stage == "precreate":
		d.add("mode-hook", Warn, "keep one: nvbind runtime unconfigure --runtime podman --mode hook, or --runtime podman (runtime mode)",
			"%s (stage %s) and the nvbind runtime are both wired into Podman: a container run with --runtime nvbind is injected twice%s", m.HooksFile, m.Stage, others)
	default:
		d.add("mode-hook", Pass, "", "hook mode: %s (stage %s); engines keep their own runtime%s", m.HooksFile, m.Stage, others)
	}
	switch {
	case m.GpusHook == "":
		d.add("mode-gpus", Skip, "", "docker --gpus is not served (nvbind runtime configure --runtime docker --mode gpus, then restart dockerd)")
	case !m.GpusIsNvbind:
		d.add("mode-gpus", Pass, "", "docker --gpus is served by %s (not nvbind's)", m.GpusHook)
	case registered[Docker]:
		d.add("mode-gpus", Warn, "use docker run --gpus on the default runtime, or --runtime nvbind without --gpus",
			"docker --gpus is served by nvbind-hook (%s) and nvbind is also a Docker runtime: --runtime nvbind --gpus injects twice", m.GpusHook)
	default:
		d.add("mode-gpus", Pass, "", "gpus mode: docker --gpus is served by nvbind-hook (%s)", m.GpusHook)
	}
}
