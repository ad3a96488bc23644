package profiles

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// EnvVar is a variable the built-in profiles may set: the software that
// reads it and the values it accepts. docs/profiles.md has the same table;
// a test fails when the two or the data files disagree.
type EnvVar struct {
	Consumer string
	check    func(string) error
}

// KnownEnv is the allowlist. A built-in profile may set no other variable;
// a user profile may, but a variable listed here must hold a valid value.
var KnownEnv = map[string]EnvVar{
	// Proton / DXVK / vkd3d-proton
	"PROTON_ENABLE_NVAPI":     {"Proton", oneOf("0", "1")},
	"DXVK_ENABLE_NVAPI":       {"DXVK", oneOf("0", "1")},
	"DXVK_STATE_CACHE_PATH":   {"DXVK (up to 2.6)", absPath},
	"DXVK_SHADER_CACHE_PATH":  {"DXVK (3.0 and later)", absPath},
	"VKD3D_SHADER_CACHE_PATH": {"vkd3d-proton", absPath},

	// NVIDIA GL/Vulkan driver
	"__GL_SHADER_DISK_CACHE":      {"NVIDIA GL/Vulkan driver", oneOf("0", "1")},
	"__GL_SHADER_DISK_CACHE_PATH": {"NVIDIA GL/Vulkan driver", absPath},
	"__GL_SHADER_DISK_CACHE_SIZE": {"NVIDIA GL/Vulkan driver", uintRange(1, 1<<40)},
	"__NV_PRIME_RENDER_OFFLOAD":   {"NVIDIA GL/Vulkan driver", oneOf("0", "1")},
	"__GLX_VENDOR_LIBRARY_NAME":   {"libglvnd (GLX)", oneOf("nvidia", "mesa")},
	"__VK_LAYER_NV_optimus":       {"NVIDIA Vulkan driver (optimus layer)", oneOf("NVIDIA_only", "non_NVIDIA_only")},

	// Display and audio clients
	"DISPLAY":         {"Xlib/XCB", match(`^[A-Za-z0-9.-]*:[0-9]+(\.[0-9]+)?$`)},
	"WAYLAND_DISPLAY": {"libwayland-client", match(`^[A-Za-z0-9._-]+$|^/[^\x00]+$`)},
	"XDG_RUNTIME_DIR": {"libwayland-client, PipeWire", absPath},
	"PULSE_SERVER":    {"libpulse", func(v string) error { return absPath(strings.TrimPrefix(v, "unix:")) }},

	// CUDA and frameworks
	"CUDA_CACHE_PATH":           {"CUDA driver", absPath},
	"CUDA_CACHE_MAXSIZE":        {"CUDA driver", uintRange(0, 4294967296)},
	"CUDA_DEVICE_ORDER":         {"CUDA runtime", oneOf("FASTEST_FIRST", "PCI_BUS_ID")},
	"CUDA_MODULE_LOADING":       {"CUDA runtime", oneOf("EAGER", "LAZY")},
	"PYTORCH_CUDA_ALLOC_CONF":   {"PyTorch", match(`^[a-z_]+:[A-Za-z0-9.]+(,[a-z_]+:[A-Za-z0-9.]+)*$`)},
	"TF_FORCE_GPU_ALLOW_GROWTH": {"TensorFlow", oneOf("true", "false")},

	// Ollama (values computed by the ollama tuner)
	"OLLAMA_NUM_PARALLEL":      {"Ollama", uintRange(1, 1024)},
	"OLLAMA_MAX_LOADED_MODELS": {"Ollama", uintRange(1, 1024)},
	"OLLAMA_CONTEXT_LENGTH":    {"Ollama", uintRange(256, 1<<21)},
	"OLLAMA_FLASH_ATTENTION":   {"Ollama", oneOf("0", "1", "true", "false")},
	"OLLAMA_KV_CACHE_TYPE":     {"Ollama", oneOf("f16", "q8_0", "q4_0")},
	"OLLAMA_KEEP_ALIVE":        {"Ollama", ollamaDuration},
	"OLLAMA_SCHED_SPREAD":      {"Ollama", oneOf("0", "1", "true", "false")},
}

// CheckEnv validates the value of a known variable; unknown names pass.
func CheckEnv(name, value string) error {
	v, ok := KnownEnv[name]
	if !ok {
		return nil
	}
	if err := v.check(value); err != nil {
		return fmt.Errorf("%s=%q is not valid for %s: %w", name, value, v.Consumer, err)
	}
	return nil
}

// checkEnvName accepts POSIX-style names only.
func checkEnvName(name string) error {
	if !envName().MatchString(name) {
		return fmt.Errorf("invalid environment variable name %q", name)
	}
	return nil
}

var envName = lazyRegexp(`^[A-Za-z_][A-Za-z0-9_]*$`)

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(vals, ", "))
	}
}

func absPath(v string) error {
	if !filepath.IsAbs(v) || strings.ContainsRune(v, 0) {
		return fmt.Errorf("want an absolute path")
	}
	return nil
}

func uintRange(min, max uint64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < min || n > max {
			return fmt.Errorf("want an integer from %d to %d", min, max)
		}
		return nil
	}
}

func match(re string) func(string) error {
	r := lazyRegexp(re)
	return func(v string) error {
		if !r().MatchString(v) {
			return fmt.Errorf("want a value matching %s", re)
		}
		return nil
	}
}

// ollamaDuration is what Ollama's OLLAMA_KEEP_ALIVE parser takes: a Go
// duration or whole seconds; negative means forever.
func ollamaDuration(v string) error {
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return nil
	}
	if _, err := time.ParseDuration(v); err == nil {
		return nil
	}
	return fmt.Errorf("want a duration (5m, 24h) or seconds (-1: forever)")
}
