package gpu

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nvbind/nvbind/internal/atomicfile"
	"github.com/nvbind/nvbind/internal/config"
)

// inventoryfile.go keeps what NVML found for the runtime, which never loads
// NVML: `nvbind cdi generate` saves the inventory, and the runtime reads
// facts procfs does not have (GPU memory, for the ollama profile) from it.

// SaveInventory writes inv to path as JSON, atomically.
func SaveInventory(path string, inv *Inventory) error {
	data, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		return fmt.Errorf("encode GPU inventory: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write GPU inventory: %w", err)
	}
	return atomicfile.Write(path, append(data, '\n'), 0o644)
}

// LoadInventory reads an inventory SaveInventory wrote.
func LoadInventory(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("GPU inventory: %w", err)
	}
	var inv Inventory
	if err := json.Unmarshal(data, &inv); err != nil {
		return nil, fmt.Errorf("GPU inventory %s: %w", path, err)
	}
	return &inv, nil
}

// DeviceMemoryFor returns the framebuffer bytes of each GPU or MIG device
// among devices (qualified CDI names), from the inventory saved at
// cfg.Driver.Inventory. An inventory made for another driver than the
// running one is refused: GPUs may have changed with it.
func DeviceMemoryFor(cfg *config.Config, devices []string) ([]uint64, error) {
	if cfg.Driver.Inventory == "" {
		return nil, fmt.Errorf("no GPU inventory configured (driver.inventory)")
	}
	inv, err := LoadInventory(cfg.Driver.Inventory)
	if err != nil {
		if w := DetectWSL(cfg.Driver.Root); w != nil {
			return nil, fmt.Errorf("%w (on WSL2 GPU memory comes from NVML through %s/libnvidia-ml.so.1, which did not load when the spec was made: run 'nvbind cdi generate' once nvidia-smi works)", err, WSLLibDir)
		}
		return nil, fmt.Errorf("%w (run 'nvbind cdi generate' on a host where NVML works)", err)
	}
	if current, err := ReadDriverVersion(cfg.Driver.Root); err == nil && inv.DriverVersion != current {
		return nil, fmt.Errorf("GPU inventory %s is for driver %s, the running driver is %s (run 'nvbind cdi generate')",
			cfg.Driver.Inventory, inv.DriverVersion, current)
	}
	return DeviceMemory(inv, cfg.CDI.DefaultKind, devices)
}

// DeviceMemory maps device names of kind (index, GPU-<uuid>, all,
// <gpu>:<mig>, MIG-<uuid>) to memory. driver and capability devices carry
// no GPU and are skipped; a device of another kind is skipped too.
func DeviceMemory(inv *Inventory, kind string, devices []string) ([]uint64, error) {
	var out []uint64
	add := func(name string, bytes uint64) error {
		if bytes == 0 {
			return fmt.Errorf("GPU inventory has no memory size for %s", name)
		}
		out = append(out, bytes)
		return nil
	}
	for _, d := range devices {
		name, ok := strings.CutPrefix(d, kind+"=")
		if !ok || name == "driver" || strings.HasPrefix(name, "capability-") {
			continue
		}
		if name == "all" {
			for _, g := range inv.GPUs {
				if err := add("GPU "+strconv.Itoa(g.Index), g.MemoryBytes); err != nil {
					return nil, err
				}
			}
			continue
		}
		bytes, found := lookupMemory(inv, name)
		if !found {
			return nil, fmt.Errorf("device %s is not in the GPU inventory", d)
		}
		if err := add(d, bytes); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func lookupMemory(inv *Inventory, name string) (uint64, bool) {
	gpuIdx, migIdx, isPair := strings.Cut(name, ":")
	for _, g := range inv.GPUs {
		if name == strconv.Itoa(g.Index) || name == g.UUID {
			return g.MemoryBytes, true
		}
		for _, m := range g.MIGDevices {
			if name == m.UUID || (isPair && gpuIdx == strconv.Itoa(g.Index) && migIdx == strconv.Itoa(m.Index)) {
				return m.MemoryBytes, true
			}
		}
	}
	return 0, false
}
