package inject

import (
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/profiles"
	"github.com/nvbind/nvbind/internal/request"
)

// applyProfile applies req's profile to spec after the CDI devices are in
// (so the GPUs the container gets can be counted), reporting warnings (a
// model that is overcommitted, a bind-mounted /dev/shm, a variable the
// container already sets) to log. Nothing is written on error: the caller
// leaves the bundle as it was.
func applyProfile(spec *rspec.Spec, req *request.Request, cat *profiles.Catalog, log logrus.FieldLogger) error {
	caps, err := cat.Capabilities(req.Profile)
	if err != nil {
		return err
	}
	if missing := missingCapabilities(req.Capabilities, caps); len(missing) > 0 && len(req.Devices) > 0 {
		log.Warnf("profile %s asks for driver capabilities %s that were not injected", req.Profile, strings.Join(missing, ","))
	}
	r, err := cat.Resolve(req.Profile, req.ProfileParams, profiles.Target{
		Devices: req.Devices,
		GPUs:    countGPUs(spec, req),
	})
	if err != nil {
		return err
	}
	notes, err := r.Apply(spec)
	if err != nil {
		return err
	}
	for _, w := range append(r.Warnings, notes...) {
		log.Warnf("profile %s: %s", req.Profile, w)
	}
	for _, s := range r.Settings {
		if s.Skipped != "" {
			log.Debugf("profile %s: %s %s skipped: %s", req.Profile, s.Kind, s.Name, s.Skipped)
		}
	}
	return nil
}

// profileCapabilities adds the driver capabilities of req's profile to the
// request, so the capability devices they need are injected with the GPUs.
// Call it before injecting devices.
func profileCapabilities(req *request.Request, cat *profiles.Catalog) error {
	caps, err := cat.Capabilities(req.Profile)
	if err != nil {
		return err
	}
	merged := strings.Join(append(append([]string(nil), req.Capabilities...), caps...), ",")
	all, err := request.ParseCapabilities(merged)
	if err != nil {
		return err
	}
	req.Capabilities = all
	return nil
}

func missingCapabilities(have, want []string) []string {
	var out []string
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
}

// isGPUNode matches the per-GPU device nodes (/dev/nvidia0, ...), not
// nvidiactl, nvidia-uvm or nvidia-modeset. WSL2's /dev/dxg counts as one
// GPU: it is all a container can be told it has.
func isGPUNode(path string) bool {
	if path == gpu.WSLDevice {
		return true
	}
	n := strings.TrimPrefix(path, "/dev/nvidia")
	return n != path && n != "" && strings.Trim(n, "0123456789") == ""
}

// countGPUs returns how many GPUs the container gets: its MIG devices when
// it asks for MIG, else the GPU nodes in the spec (which also covers
// devices an engine injected itself).
func countGPUs(spec *rspec.Spec, req *request.Request) int {
	mig := 0
	for _, d := range req.Devices {
		_, name, _ := strings.Cut(d, "=")
		if strings.HasPrefix(name, "MIG-") || strings.Contains(name, ":") {
			mig++
		}
	}
	if mig > 0 {
		return mig
	}
	n := 0
	if spec.Linux != nil {
		for _, d := range spec.Linux.Devices {
			if isGPUNode(d.Path) {
				n++
			}
		}
	}
	return n
}
