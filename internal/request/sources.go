package request

import (
	"fmt"
	"path"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// Source is where a request's devices came from. The sources rank as
// NVIDIA's toolkit ranks them: CDI annotations (set by a device plugin or
// an orchestrator) over the volume-mount list (the device plugin's
// volume-mounts strategy) over NVIDIA_VISIBLE_DEVICES (set by the image,
// which every CUDA base image does). A lower-ranked source never adds
// devices to a higher-ranked one.
type Source string

const (
	SourceNone        Source = ""
	SourceAnnotation  Source = "annotation"
	SourceVolumeMount Source = "volume-mount"
	SourceEnv         Source = "env"
)

// VolumeMountRoot is where the volume-mount list lives: a host /dev/null
// mounted at <root>/<id> or <root>/cdi/<vendor>/<class>=<name> asks for
// that device.
const VolumeMountRoot = "/var/run/nvidia-container-devices"

// Input is the part of a spec a request is read from.
type Input struct {
	Env         []string
	Annotations map[string]string
	Mounts      []rspec.Mount
}

// Options tune parsing.
type Options struct {
	// DefaultKind ("nvidia.com/gpu") qualifies bare device names.
	DefaultKind string
	// AnnotationPrefixes are CDI annotation prefixes besides cdi.k8s.io/.
	AnnotationPrefixes []string
}

func cdiAnnotation(key string, prefixes []string) bool {
	if strings.HasPrefix(key, AnnotationCDIPrefix) {
		return true
	}
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// readDevices fills r.Devices from the highest-ranked source that names
// any, recording what lower-ranked sources asked for in r.Ignored.
func (r *Request) readDevices(in Input, opts Options) error {
	kind := opts.DefaultKind
	if err := r.parseAnnotations(in.Annotations, kind, opts.AnnotationPrefixes); err != nil {
		return err
	}
	visible, hasVisible := lookupEnv(in.Env, EnvVisibleDevices)
	if strings.TrimSpace(visible) == VolumeMountRoot {
		// Points at the volume-mount list: no devices of its own (a pod
		// that asked for no GPU gets none, not an error).
		hasVisible = false
	}
	if len(r.Devices) > 0 {
		r.Source = SourceAnnotation
		r.ignoreEnv(visible, hasVisible, kind)
		return nil
	}
	mounted, err := volumeMountDevices(in.Mounts, kind)
	if err != nil {
		return err
	}
	if len(mounted) > 0 {
		r.Source = SourceVolumeMount
		r.addDevices(mounted)
		r.ignoreEnv(visible, hasVisible, kind)
		return nil
	}
	if !hasVisible {
		return nil
	}
	devs, err := parseVisibleDevices(visible, kind)
	if err != nil {
		return err
	}
	if len(devs) > 0 {
		r.Source = SourceEnv
		r.addDevices(devs)
	}
	return nil
}

// ignoreEnv records the devices NVIDIA_VISIBLE_DEVICES names when a
// higher-ranked source won; a value that does not parse is recorded as it
// is, as it cannot fail a request it has no part in.
func (r *Request) ignoreEnv(visible string, has bool, kind string) {
	if !has {
		return
	}
	devs, err := parseVisibleDevices(visible, kind)
	if err != nil {
		r.Ignored = append(r.Ignored, truncate(printable(visible)))
		return
	}
	r.Ignored = append(r.Ignored, devs...)
}

// volumeMountDevices reads the volume-mount list: host /dev/null mounted
// under VolumeMountRoot.
func volumeMountDevices(mounts []rspec.Mount, kind string) ([]string, error) {
	var out []string
	for _, m := range mounts {
		dest := path.Clean(m.Destination)
		rest, ok := strings.CutPrefix(dest, VolumeMountRoot+"/")
		if !ok || path.Clean(m.Source) != "/dev/null" {
			continue
		}
		if len(out) >= maxItems {
			return nil, fmt.Errorf("volume-mount list names more than %d devices", maxItems)
		}
		where := fmt.Sprintf("volume mount %q", truncate(printable(dest)))
		if name, isCDI := strings.CutPrefix(rest, "cdi/"); isCDI {
			if err := checkQualified(where, name); err != nil {
				return nil, err
			}
			out = append(out, name)
			continue
		}
		if rest == DeviceAll {
			out = append(out, kind+"="+DeviceAll)
			continue
		}
		if err := checkGPUID(rest); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, kind+"="+rest)
	}
	return out, nil
}

// KindOf returns the vendor/class part of a qualified CDI device name.
func KindOf(device string) string {
	kind, _, _ := strings.Cut(device, "=")
	return kind
}

// IsDefaultKind reports whether kind is defaultKind or its MIG kind (the
// same vendor, class "mig" or "mig-<profile>", as device plugins name
// MIG resources).
func IsDefaultKind(kind, defaultKind string) bool {
	if kind == defaultKind {
		return true
	}
	vendor, class, ok := strings.Cut(kind, "/")
	dv, _, _ := strings.Cut(defaultKind, "/")
	return ok && vendor == dv && (class == "mig" || strings.HasPrefix(class, "mig-"))
}
