// Package gpu discovers the host's NVIDIA GPUs and driver files and turns
// them into CDI specs.
package gpu

// Source says which discovery path produced an Inventory.
type Source string

const (
	SourceNVML   Source = "nvml"
	SourceProcfs Source = "procfs"
	SourceNone   Source = "none"
	// SourceWSL: WSL2's driver files, without NVML (see wsl.go).
	SourceWSL Source = "wsl"
)

// Inventory is what discovery found on a host.
type Inventory struct {
	Source        Source `json:"source"`
	DriverRoot    string `json:"driverRoot"`
	DriverVersion string `json:"driverVersion,omitempty"`
	// CUDAVersion is the CUDA driver API version, e.g. "12.8"
	// (NVML; on the procfs path derived from the driver branch).
	CUDAVersion string `json:"cudaVersion,omitempty"`
	GPUs        []GPU  `json:"gpus"`
	// Note says in words why discovery found less than it could: NVML not
	// usable, no driver loaded, no GPU.
	Note string `json:"note,omitempty"`
	// WSL is set on WSL2 (see wsl.go); DriverVersion is then the driver
	// store's identity.
	WSL *WSL `json:"wsl,omitempty"`
}

// GPU is one physical GPU.
type GPU struct {
	Index int    `json:"index"`
	Minor int    `json:"minor"`
	UUID  string `json:"uuid"`
	Name  string `json:"name"`
	// BusID is the PCI address in domain:bus:device.function form, lower case
	// (0000:07:00.0).
	BusID string `json:"busId"`
	// MemoryBytes is total framebuffer memory; 0 when unknown (procfs path).
	MemoryBytes uint64 `json:"memoryBytes,omitempty"`
	// ComputeCapability like "8.0"; "" when unknown (procfs path: derived
	// from the model name).
	ComputeCapability string `json:"computeCapability,omitempty"`
	// Brand as NVML names it, lower case ("nvidia", "tesla", "geforcertx");
	// procfs path: derived from the model name.
	Brand      string `json:"brand,omitempty"`
	MIGEnabled bool   `json:"migEnabled"`
	MIGDevices []MIG  `json:"migDevices,omitempty"`
}

// MIG is one MIG device (GPU instance + compute instance) of a GPU.
type MIG struct {
	// Index is the MIG device's index within its parent GPU.
	Index int `json:"index"`
	// UUID is "" on the procfs path (the kernel does not publish it).
	UUID        string `json:"uuid,omitempty"`
	Profile     string `json:"profile,omitempty"`
	GIID        int    `json:"giId"`
	CIID        int    `json:"ciId"`
	MemoryBytes uint64 `json:"memoryBytes,omitempty"`
}
