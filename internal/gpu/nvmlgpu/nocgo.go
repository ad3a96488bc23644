//go:build !cgo

package nvmlgpu

import (
	"errors"

	"github.com/nvbind/nvbind/internal/gpu"
)

// Source is NVML when built without cgo: never usable.
type Source struct{}

// ForRoot returns a Source that reports NVML as not built in.
func ForRoot(string) *Source { return &Source{} }

// Inventory implements gpu.NVMLSource.
func (*Source) Inventory() (*gpu.Inventory, error) {
	return nil, errors.New("built without cgo: no NVML support")
}

// Discover is gpu.Discover with NVML for root tried first.
func Discover(root string) (*gpu.Inventory, error) {
	return gpu.Discover(gpu.DiscoverOptions{DriverRoot: root, NVML: ForRoot(root)})
}

// Stats implements gpu.StatsSource.
func (*Source) Stats() ([]gpu.Stats, error) {
	return nil, errors.New("built without cgo: no NVML support")
}
