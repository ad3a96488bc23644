package inject

import (
	"strings"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/gpu"
)

// explainUnresolved turns a request for default-kind devices no spec has
// into the reason the kernel knows (WSL2 cannot isolate single GPUs; a GPU
// bound to nouveau or vfio-pci), instead of "unresolvable CDI device". It
// costs a map lookup per device; sysfs is read only when one is missing.
func explainUnresolved(specs *specSet, devices []string, cfg *config.Config) error {
	var missing []string
	for _, d := range devices {
		name, ok := strings.CutPrefix(d, cfg.CDI.DefaultKind+"=")
		if ok && !specs.has(d) {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return gpu.ExplainMissing(cfg.Driver.Root, missing)
}
