//go:build !cgo

package deviceplugin

import (
	"errors"

	"github.com/nvbind/nvbind/internal/gpu"
)

// OpenNVMLBackend reports NVML as not built in: the plugin then scores
// closeness by NUMA node and reports every GPU healthy.
func OpenNVMLBackend(string, []uint64, *gpu.Inventory, func(gpu.GPU) int) (Topology, HealthMonitor, error) {
	return nil, nil, errors.New("built without cgo: no NVML support")
}
