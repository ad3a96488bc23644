package gpu

import (
	"errors"
	"fmt"
)

// NVMLSource enumerates GPUs through NVML. internal/gpu/nvmlgpu implements
// it. gpu itself does not import go-nvml (a cgo package), so binaries that
// must never touch NVML, nvbind-runtime and nvbind-hook, stay pure Go.
type NVMLSource interface {
	// Inventory returns the GPUs NVML sees (Source = SourceNVML). An error
	// means NVML is not usable here (no library, no driver, in a container).
	Inventory() (*Inventory, error)
}

// DiscoverOptions says where and how to look for GPUs.
type DiscoverOptions struct {
	// DriverRoot is where the driver is installed ("" or "/" = the host).
	DriverRoot string
	// NVML is tried first when set; on failure discovery falls back to
	// procfs and says why in Inventory.Note.
	NVML NVMLSource
}

// Discover finds the GPUs: NVML first (when opts.NVML is set), then procfs
// under the driver root. No driver at all is not an error: it gives an
// Inventory with Source "none" and a Note that says so.
func Discover(opts DiscoverOptions) (*Inventory, error) {
	root := cleanRoot(opts.DriverRoot)
	if w := DetectWSL(root); w != nil {
		return discoverWSL(root, w, opts.NVML), nil
	}
	var note string
	if opts.NVML != nil {
		inv, err := opts.NVML.Inventory()
		if err == nil {
			inv.Source, inv.DriverRoot = SourceNVML, root
			if inv.CUDAVersion == "" {
				inv.CUDAVersion = CUDAVersionForDriver(inv.DriverVersion)
			}
			return inv, nil
		}
		note = fmt.Sprintf("NVML not usable (%v); used procfs", err)
	}
	inv, err := discoverProcfs(root)
	if errors.Is(err, ErrNoDriver) {
		return &Inventory{Source: SourceNone, DriverRoot: root, Note: err.Error()}, nil
	}
	if err != nil {
		return nil, err
	}
	inv.Note = note
	if len(inv.GPUs) == 0 {
		inv.Note = joinNote(inv.Note, "driver loaded but no GPU found")
	}
	return inv, nil
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func cleanRoot(root string) string {
	if root == "" {
		return "/"
	}
	return root
}
