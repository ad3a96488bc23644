// Package inject turns a container's GPU request into edits of its OCI
// spec: CDI devices from the spec dirs (or a just-in-time spec), the
// capability devices the request needs, and the request's profile.
package inject

import (
	"fmt"
	"sort"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/request"
)

// Apply edits spec in place for req.
func Apply(spec *rspec.Spec, req *request.Request, cfg *config.Config, log *logrus.Logger) error {
	if err := profileCapabilities(req, cfg); err != nil {
		return err
	}
	if len(req.Devices) > 0 {
		if err := injectDevices(spec, req, cfg, log); err != nil {
			return err
		}
	}
	if req.Profile != "" {
		if err := applyProfile(spec, req, cfg, log); err != nil {
			return err
		}
	}
	dedupeHooks(spec)
	return nil
}

func injectDevices(spec *rspec.Spec, req *request.Request, cfg *config.Config, log *logrus.Logger) error {
	kind := cfg.CDI.DefaultKind
	cache, err := loadCache(cfg, req, log)
	if err != nil {
		return err
	}
	devices := append([]string(nil), req.Devices...)
	if req.HasKind(kind) {
		// Capability devices are optional: a spec written by another
		// generator may not have them, and then the common edits are all
		// the driver files there are.
		for _, d := range req.CapabilityDevices(kind) {
			if cache.GetDevice(d) != nil {
				devices = append(devices, d)
			} else {
				log.Warnf("CDI device %s not found: capability not injected", d)
			}
		}
	}
	unresolved, err := cache.InjectDevices(spec, devices...)
	if len(unresolved) > 0 {
		sort.Strings(unresolved)
		return fmt.Errorf("unresolvable CDI device %s (specs searched in %s)%s",
			strings.Join(unresolved, ", "), strings.Join(specDirs(cfg), ", "), specErrors(cache))
	}
	if err != nil {
		return fmt.Errorf("inject CDI devices: %w", err)
	}
	return nil
}

// specDirs are the configured spec dirs plus the JIT spec's dir, which
// comes last so that it wins conflicts (later dirs take precedence).
func specDirs(cfg *config.Config) []string {
	return cfg.CDI.SpecDirs
}

// loadCache reads the spec dirs once; no watcher, no refresh: this process
// lives for one container.
func loadCache(cfg *config.Config, req *request.Request, log *logrus.Logger) (*cdi.Cache, error) {
	cache, err := cdi.NewCache(cdi.WithSpecDirs(specDirs(cfg)...), cdi.WithAutoRefresh(false))
	if err != nil {
		return nil, fmt.Errorf("read CDI specs: %w", err)
	}
	return cache, nil
}

// specErrors summarises broken spec files, which are otherwise skipped
// silently and make their devices look missing.
func specErrors(cache *cdi.Cache) string {
	errs := cache.GetErrors()
	if len(errs) == 0 {
		return ""
	}
	paths := make([]string, 0, len(errs))
	for p := range errs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return fmt.Sprintf("; invalid spec %s: %v", paths[0], errs[paths[0]][0])
}

// dedupeHooks drops hooks that are exact repeats. An engine with its own
// CDI support (Podman --device, Docker 25+, containerd enable_cdi) may have
// injected the same devices already; CDI replaces nodes, mounts and env on
// a second injection but appends hooks.
func dedupeHooks(spec *rspec.Spec) {
	if spec.Hooks == nil {
		return
	}
	h := spec.Hooks
	h.Prestart = uniqueHooks(h.Prestart)
	h.CreateRuntime = uniqueHooks(h.CreateRuntime)
	h.CreateContainer = uniqueHooks(h.CreateContainer)
	h.StartContainer = uniqueHooks(h.StartContainer)
	h.Poststart = uniqueHooks(h.Poststart)
	h.Poststop = uniqueHooks(h.Poststop)
}

func uniqueHooks(hooks []rspec.Hook) []rspec.Hook {
	if len(hooks) < 2 {
		return hooks
	}
	out := hooks[:0]
	seen := map[string]bool{}
	for _, h := range hooks {
		key := h.Path + "\x00" + strings.Join(h.Args, "\x00") + "\x00\x00" + strings.Join(h.Env, "\x00")
		if h.Timeout != nil {
			key += fmt.Sprintf("\x00t%d", *h.Timeout)
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, h)
		}
	}
	return out
}
