// Package inject turns a container's GPU request into edits of its OCI
// spec: CDI devices from the spec dirs (or a just-in-time spec), the
// capability devices the request needs, and the request's profile.
package inject

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	cdispec "tags.cncf.io/container-device-interface/specs-go"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/profiles"
	"github.com/nvbind/nvbind/internal/request"
)

// Apply edits spec in place for req.
func Apply(spec *rspec.Spec, req *request.Request, cfg *config.Config, log *logrus.Logger) error {
	// The profile's capabilities decide which capability devices are
	// injected, so it is read first; it is applied last, when the GPUs the
	// container gets can be counted.
	var cat *profiles.Catalog
	if req.Profile != "" {
		var err error
		if cat, err = profiles.LoadCatalog(cfg); err != nil {
			return err
		}
		if err := profileCapabilities(req, cat); err != nil {
			return err
		}
	}
	if len(req.Devices) > 0 {
		if err := injectDevices(spec, req, cfg, log); err != nil {
			return err
		}
	}
	if cat != nil {
		if err := applyProfile(spec, req, cat, log); err != nil {
			return err
		}
	}
	dropRepeats(spec)
	batchHooks(spec)
	dropRepeats(spec) // a batch made by an earlier injection
	return nil
}

func injectDevices(spec *rspec.Spec, req *request.Request, cfg *config.Config, log *logrus.Logger) error {
	kind := cfg.CDI.DefaultKind
	if err := checkRequirements(req, cfg, log); err != nil {
		return err
	}
	specs, err := loadSpecs(cfg, req, log)
	if err != nil {
		return err
	}
	if err := explainUnresolved(specs, req.Devices, cfg); err != nil {
		return err
	}
	devices := append([]string(nil), req.Devices...)
	if req.HasKind(kind) {
		// Capability devices are optional: a spec written by another
		// generator may not have them, and then the common edits are all
		// the driver files there are.
		for _, d := range req.CapabilityDevices(kind) {
			if specs.has(d) {
				devices = append(devices, d)
			} else {
				log.Warnf("CDI device %s not found: capability not injected", d)
			}
		}
	}
	return specs.inject(spec, devices)
}

// specDirs are the configured spec dirs plus the JIT spec's dir, which
// comes last so that it wins conflicts (later dirs take precedence).
func specDirs(cfg *config.Config) []string {
	dirs := cfg.CDI.SpecDirs
	if cfg.CDI.JITSpec == "" {
		return dirs
	}
	jitDir := filepath.Dir(cfg.CDI.JITSpec)
	for _, d := range dirs {
		if filepath.Clean(d) == jitDir {
			return dirs
		}
	}
	return append(append([]string(nil), dirs...), jitDir)
}

// loadSpecs reads the spec dirs once. When the request is for the default
// kind and no spec serves it, or the serving spec was made for another
// driver or other devices, it writes a just-in-time spec and reads the
// dirs again. When the spec cannot be written (a read-only or full spec
// dir) it makes one in memory for this create, and remembers the failure
// for a few seconds so that the next creates skip the lock and the write.
func loadSpecs(cfg *config.Config, req *request.Request, log *logrus.Logger) (*specSet, error) {
	dirs := specDirs(cfg)
	index := newSpecIndex(cfg)
	specs, err := readSpecDirs(dirs, index, log.Warnf)
	if err != nil || cfg.CDI.JITSpec == "" || !req.HasKind(cfg.CDI.DefaultKind) {
		return specs, err
	}
	why := staleReason(specs, req, cfg)
	if why == "" {
		return specs, nil
	}
	jit, state := cfg.CDI.JITSpec, cfg.Runtime.StateDir
	// JSON content (valid YAML too, whatever the file's name) keeps the
	// next create on the fast decoder.
	opts := gpu.GenerateOptions{DriverRoot: cfg.Driver.Root, HookPath: cfg.HookPath(), Format: "json"}
	version, _ := gpu.ReadDriverVersion(cfg.Driver.Root)
	fingerprint, _ := gpu.DeviceFingerprint(cfg.Driver.Root)
	werr := gpu.CachedJITFailure(state, jit, version, fingerprint)
	if werr == nil {
		log.Infof("writing just-in-time CDI spec %s: %s", jit, why)
		werr = gpu.WriteJITSpec(jit, opts)
		if werr == nil {
			gpu.ForgetJITFailure(state, jit)
			return readSpecDirs(dirs, index, log.Warnf)
		}
		if errors.Is(werr, gpu.ErrNoDriver) {
			// Nothing to generate from: the request is reported as unmet.
			log.Warnf("just-in-time CDI spec: %v", werr)
			return specs, nil
		}
		gpu.CacheJITFailure(state, jit, version, fingerprint, werr)
	}
	log.Warnf("just-in-time CDI spec %s cannot be written (%s: %v): using one made in memory", jit, why, werr)
	data, err := gpu.GenerateJIT(opts)
	if err == nil {
		err = specs.replaceNvbindSpecs(jit+" (made in memory)", data)
	}
	if err != nil {
		return nil, fmt.Errorf("just-in-time CDI spec %s: %w (made in memory: %v)", jit, werr, err)
	}
	return specs, nil
}

// staleReason says why the specs on disk cannot serve req's default-kind
// devices ("" when they can): a device no spec has, or a spec nvbind made
// for a driver other than the running one. Only procfs is read.
func staleReason(specs *specSet, req *request.Request, cfg *config.Config) string {
	kind := cfg.CDI.DefaultKind
	current, fingerprint := "", ""
	for _, d := range req.Devices {
		if !strings.HasPrefix(d, kind+"=") {
			continue
		}
		dev := specs.devices[d]
		if dev == nil {
			return "no spec has " + d
		}
		recorded := recordedDriverVersion(dev.spec.raw)
		if recorded == "" {
			continue // not made by nvbind: trust it
		}
		if current == "" {
			v, err := gpu.ReadDriverVersion(cfg.Driver.Root)
			if err != nil {
				return ""
			}
			current = v
		}
		if recorded != current {
			return fmt.Sprintf("%s was made for driver %s, the running driver is %s", dev.spec.path, recorded, current)
		}
		// Same driver: the GPUs or MIG instances may have changed, and an
		// index name would then be another device.
		if fingerprint == "" {
			fp, err := gpu.DeviceFingerprint(cfg.Driver.Root)
			if err != nil {
				continue
			}
			fingerprint = fp
		}
		switch was := recordedEnv(dev.spec.raw, gpu.DevicesEnv); {
		case was == "":
			return fmt.Sprintf("%s does not record the devices it was made for", dev.spec.path)
		case was != fingerprint:
			return fmt.Sprintf("%s was made for other devices (a GPU added or removed, or MIG reconfigured)", dev.spec.path)
		}
	}
	return ""
}

// recordedDriverVersion is the driver version nvbind wrote into a spec's
// common env ("" for specs made by other tools).
func recordedDriverVersion(spec *cdispec.Spec) string {
	return recordedEnv(spec, gpu.DriverVersionEnv)
}

// recordedEnv is the value of name in a spec's common env ("" if none).
func recordedEnv(spec *cdispec.Spec, name string) string {
	prefix := name + "="
	for _, e := range spec.ContainerEdits.Env {
		if strings.HasPrefix(e, prefix) {
			return e[len(prefix):]
		}
	}
	return ""
}

// checkRequirements evaluates NVIDIA_REQUIRE_* against procfs facts.
func checkRequirements(req *request.Request, cfg *config.Config, log *logrus.Logger) error {
	if !gpu.HasRequirements(req.Requirements) || !req.HasKind(cfg.CDI.DefaultKind) {
		return nil
	}
	facts, err := gpu.ReadHostFacts(cfg.Driver.Root)
	if err != nil {
		// Passing a check nvbind could not make would start a container
		// on a driver its image says it cannot use.
		return fmt.Errorf("cannot check %s: host driver facts unreadable: %w", strings.Join(req.Requirements, " "), err)
	}
	return gpu.CheckRequirements(req.Requirements, facts)
}

// dropRepeats drops hooks and device cgroup rules that are exact repeats.
// An engine with its own CDI support (Podman --device, Docker 25+,
// containerd enable_cdi) may have injected the same devices already; CDI
// replaces nodes, mounts and env on a second injection but appends hooks
// and cgroup rules.
func dropRepeats(spec *rspec.Spec) {
	if spec.Linux != nil && spec.Linux.Resources != nil {
		spec.Linux.Resources.Devices = uniqueAllowRules(spec.Linux.Resources.Devices)
	}
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

// uniqueAllowRules drops an allow rule that repeats one before it with no
// deny rule in between, so the rules still mean what they meant.
func uniqueAllowRules(rules []rspec.LinuxDeviceCgroup) []rspec.LinuxDeviceCgroup {
	out := rules[:0]
	seen := map[string]bool{}
	for _, r := range rules {
		if !r.Allow {
			clear(seen)
			out = append(out, r)
			continue
		}
		key := fmt.Sprintf("%s %v %v %s", r.Type, deref(r.Major), deref(r.Minor), r.Access)
		if !seen[key] {
			seen[key] = true
			out = append(out, r)
		}
	}
	return out
}

func deref(p *int64) any {
	if p == nil {
		return "*"
	}
	return *p
}
