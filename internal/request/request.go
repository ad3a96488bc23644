// Package request reads what GPU access a container asks for from its spec:
// NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES, NVIDIA_REQUIRE_*, CDI
// annotations (cdi.k8s.io/*) and an nvbind profile. Everything comes from
// the image or the user, so it is parsed strictly: bounded lengths, allowed
// characters only, and errors that name the bad value.
package request

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"tags.cncf.io/container-device-interface/pkg/parser"
)

const (
	EnvVisibleDevices = "NVIDIA_VISIBLE_DEVICES"
	EnvCapabilities   = "NVIDIA_DRIVER_CAPABILITIES"
	EnvRequirePrefix  = "NVIDIA_REQUIRE_"
	EnvDisableRequire = "NVIDIA_DISABLE_REQUIRE"
	EnvCUDAVersion    = "CUDA_VERSION"
	EnvProfile        = "NVBIND_PROFILE"

	AnnotationCDIPrefix     = "cdi.k8s.io/"
	AnnotationProfile       = "nvbind.io/profile"
	AnnotationProfileParams = "nvbind.io/profile."

	// DefaultCapabilities is what a container gets when it names none.
	DefaultCapabilities = "utility,compute"

	// Device names for the special NVIDIA_VISIBLE_DEVICES values (see the
	// CDI spec nvbind generates).
	DeviceAll    = "all"
	DeviceDriver = "driver"
	// CapabilityDevicePrefix names the spec's per-capability devices.
	CapabilityDevicePrefix = "capability-"
)

// Limits on untrusted input.
const (
	maxValueLen   = 4096
	maxItems      = 256
	maxItemLen    = 128
	maxAnnotation = 64
)

// Capabilities nvbind knows, in a stable order.
var Capabilities = []string{"compat32", "compute", "display", "graphics", "ngx", "utility", "video"}

// baseCapabilities come with every GPU device of the spec (its common
// edits); the others need a capability device.
var baseCapabilities = map[string]bool{"compute": true, "utility": true}

// Request is a container's GPU request.
type Request struct {
	// Devices are fully qualified CDI device names, without duplicates, in
	// the order asked for.
	Devices []string
	// Capabilities are the driver capabilities, sorted, without duplicates.
	Capabilities []string
	// Requirements are the NVIDIA_REQUIRE_* variables ("NAME=value"), and
	// CUDA_VERSION without NVIDIA_REQUIRE_CUDA; nil when
	// NVIDIA_DISABLE_REQUIRE is true.
	Requirements []string
	// Profile and ProfileParams select an nvbind workload profile.
	Profile       string
	ProfileParams map[string]string
	// Source is where Devices came from (see sources.go); Ignored are the
	// devices a lower-ranked source asked for, ignored.
	Source  Source
	Ignored []string
}

// Parse reads the request from a spec's process env and annotations.
// defaultKind ("nvidia.com/gpu") qualifies bare device names. It returns
// nil, nil when the container asks for nothing.
func Parse(env []string, annotations map[string]string, defaultKind string) (*Request, error) {
	return ParseWith(Input{Env: env, Annotations: annotations}, Options{DefaultKind: defaultKind})
}

// ParseWith reads the request from in: devices from the highest-ranked
// source that names any (annotations, then the volume-mount list, then
// NVIDIA_VISIBLE_DEVICES), the profile, capabilities and requirements.
func ParseWith(in Input, opts Options) (*Request, error) {
	env := in.Env
	r := &Request{}
	if err := r.readDevices(in, opts); err != nil {
		return nil, err
	}
	if profile, ok := lookupEnv(env, EnvProfile); ok && profile != "" && r.Profile == "" {
		if err := checkName("env "+EnvProfile, profile); err != nil {
			return nil, err
		}
		r.Profile = profile
	}
	if len(r.Devices) == 0 && r.Profile == "" {
		return nil, nil
	}
	capValue, _ := lookupEnv(env, EnvCapabilities)
	caps, err := ParseCapabilities(capValue)
	if err != nil {
		return nil, err
	}
	r.Capabilities = caps
	// NVIDIA_DISABLE_REQUIRE is a strconv.ParseBool boolean, as in NVIDIA's
	// toolkit: a value that is not one leaves the checks on.
	v, _ := lookupEnv(env, EnvDisableRequire)
	if off, err := strconv.ParseBool(v); err != nil || !off {
		r.Requirements = requirements(env)
	}
	return r, nil
}

// CapabilityDevices returns the spec devices of kind that bring the
// capabilities beyond the spec's common edits.
func (r *Request) CapabilityDevices(kind string) []string {
	var out []string
	for _, c := range r.Capabilities {
		if !baseCapabilities[c] {
			out = append(out, kind+"="+CapabilityDevicePrefix+c)
		}
	}
	return out
}

// HasKind reports whether the request asks for a device of kind.
func (r *Request) HasKind(kind string) bool {
	for _, d := range r.Devices {
		if strings.HasPrefix(d, kind+"=") {
			return true
		}
	}
	return false
}

func (r *Request) addDevices(devs []string) {
	for _, d := range devs {
		dup := false
		for _, have := range r.Devices {
			if have == d {
				dup = true
				break
			}
		}
		if !dup {
			r.Devices = append(r.Devices, d)
		}
	}
}

// lookupEnv returns the last NAME=value of env, as a later entry overrides
// an earlier one.
func lookupEnv(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if len(env[i]) > len(name) && env[i][len(name)] == '=' && strings.HasPrefix(env[i], name) {
			return env[i][len(name)+1:], true
		}
	}
	return "", false
}

// parseVisibleDevices turns NVIDIA_VISIBLE_DEVICES into CDI names.
func parseVisibleDevices(value, kind string) ([]string, error) {
	v := strings.TrimSpace(value)
	switch v {
	case "", "void":
		return nil, nil
	case "none":
		return []string{kind + "=" + DeviceDriver}, nil
	case "all":
		return []string{kind + "=" + DeviceAll}, nil
	}
	if len(v) > maxValueLen {
		return nil, fmt.Errorf("%s is %d bytes long, more than %d", EnvVisibleDevices, len(v), maxValueLen)
	}
	items := strings.Split(v, ",")
	if len(items) > maxItems {
		return nil, fmt.Errorf("%s lists %d devices, more than %d", EnvVisibleDevices, len(items), maxItems)
	}
	out := make([]string, 0, len(items))
	for _, item := range items {
		item = strings.TrimSpace(item)
		if strings.Contains(item, "=") {
			// Already a CDI name (vendor.com/class=name).
			if err := checkQualified(EnvVisibleDevices, item); err != nil {
				return nil, err
			}
			out = append(out, item)
			continue
		}
		if err := checkGPUID(item); err != nil {
			return nil, err
		}
		out = append(out, kind+"="+item)
	}
	return out, nil
}

// checkGPUID accepts an index (3), a MIG pair (0:1), or a GPU-/MIG- UUID.
func checkGPUID(id string) error {
	bad := func(why string) error {
		return fmt.Errorf("%s: invalid device %q: %s", EnvVisibleDevices, truncate(id), why)
	}
	if id == "" {
		return bad("empty entry")
	}
	if len(id) > maxItemLen {
		return bad(fmt.Sprintf("longer than %d characters", maxItemLen))
	}
	switch {
	case isDigits(id):
		if len(id) > 4 {
			return bad("index out of range")
		}
		return nil
	case strings.HasPrefix(id, "GPU-") || strings.HasPrefix(id, "MIG-"):
		for _, c := range id[4:] {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '-') {
				return bad("a UUID has hex digits and dashes only")
			}
		}
		if len(id) < 8 || id[len(id)-1] == '-' {
			return bad("not a UUID")
		}
		return nil
	}
	if gpu, mig, ok := strings.Cut(id, ":"); ok && isDigits(gpu) && isDigits(mig) && len(gpu) <= 4 && len(mig) <= 4 {
		return nil
	}
	return bad("want an index, GPU-<uuid>, MIG-<uuid>, <gpu>:<mig>, all, none or void")
}

// parseAnnotations reads the CDI annotations (cdi.k8s.io/* and the extra
// prefixes) and nvbind.io/profile*.
func (r *Request) parseAnnotations(annotations map[string]string, kind string, prefixes []string) error {
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		if cdiAnnotation(k, prefixes) || strings.HasPrefix(k, AnnotationProfile) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if len(keys) > maxAnnotation {
		return fmt.Errorf("%d CDI/profile annotations, more than %d", len(keys), maxAnnotation)
	}
	sort.Strings(keys) // deterministic device order
	for _, k := range keys {
		v := annotations[k]
		where := fmt.Sprintf("annotation %q", truncate(k))
		if len(v) > maxValueLen {
			return fmt.Errorf("annotation %q is %d bytes long, more than %d", truncate(k), len(v), maxValueLen)
		}
		switch {
		case cdiAnnotation(k, prefixes):
			for _, item := range strings.Split(v, ",") {
				item = strings.TrimSpace(item)
				if item == "" {
					continue
				}
				if !strings.Contains(item, "=") {
					if err := checkName(where, item); err != nil {
						return err
					}
					item = kind + "=" + item
				}
				if err := checkQualified(where, item); err != nil {
					return err
				}
				r.addDevices([]string{item})
			}
		case k == AnnotationProfile:
			if err := checkName(where, v); err != nil {
				return err
			}
			r.Profile = v
		case strings.HasPrefix(k, AnnotationProfileParams):
			key := strings.TrimPrefix(k, AnnotationProfileParams)
			if err := checkName(where, key); err != nil {
				return err
			}
			if r.ProfileParams == nil {
				r.ProfileParams = map[string]string{}
			}
			r.ProfileParams[key] = v
		}
	}
	return nil
}

func checkQualified(where, name string) error {
	if len(name) > maxItemLen*2 {
		return fmt.Errorf("%s: CDI device %q is too long", where, truncate(name))
	}
	if _, _, _, err := parser.ParseQualifiedName(name); err != nil {
		return fmt.Errorf("%s: invalid CDI device %q: %s", where, truncate(name), truncate(printable(err.Error())))
	}
	return nil
}

// checkName accepts a short identifier: letters, digits, '-', '_', '.', ':'.
func checkName(where, v string) error {
	if v == "" || len(v) > maxItemLen {
		return fmt.Errorf("%s: invalid name %q", where, truncate(v))
	}
	for i, c := range v {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || (i > 0 && (c == '.' || c == ':'))
		if !ok {
			return fmt.Errorf("%s: invalid name %q: letters, digits, '-', '_', '.' and ':' only", where, truncate(v))
		}
	}
	return nil
}

// ParseCapabilities parses NVIDIA_DRIVER_CAPABILITIES; "" means the default.
func ParseCapabilities(value string) ([]string, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		v = DefaultCapabilities
	}
	if len(v) > 256 {
		return nil, fmt.Errorf("%s is too long", EnvCapabilities)
	}
	set := map[string]bool{}
	all := false
	for _, c := range strings.Split(v, ",") {
		c = strings.TrimSpace(c)
		if c == "all" {
			all = true
			continue
		}
		if !known(c) {
			return nil, fmt.Errorf("%s: unknown capability %q (known: all, %s)", EnvCapabilities, truncate(c), strings.Join(Capabilities, ", "))
		}
		set[c] = true
	}
	if all {
		return append([]string(nil), Capabilities...), nil
	}
	out := make([]string, 0, len(set))
	for _, c := range Capabilities {
		if set[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

func known(c string) bool {
	for _, k := range Capabilities {
		if c == k {
			return true
		}
	}
	return false
}

// requirements returns the NVIDIA_REQUIRE_* entries of env, last one of a
// name winning, sorted by name; and CUDA_VERSION when there is no
// NVIDIA_REQUIRE_CUDA: an image built for CUDA X requires cuda>=X then, as
// NVIDIA's toolkit has it (internal/gpu evaluates it).
func requirements(env []string) []string {
	byName := map[string]string{}
	for _, e := range env {
		if name, _, ok := strings.Cut(e, "="); ok && (strings.HasPrefix(name, EnvRequirePrefix) || name == EnvCUDAVersion) {
			byName[name] = e
		}
	}
	if _, ok := byName[EnvRequirePrefix+"CUDA"]; ok {
		delete(byName, EnvCUDAVersion)
	}
	out := make([]string, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// printable escapes control characters, so that a message quoting
// untrusted input stays one line.
func printable(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// truncate keeps error messages one readable line.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
