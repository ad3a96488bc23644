package gpu

// Stats is one GPU's live readings (NVML), for `nvbind serve`'s metrics.
// A reading NVML does not give for this GPU is left at -1 (0 for lists).
type Stats struct {
	Index int
	UUID  string
	// UtilizationRatio is the GPU's busy share over NVML's last sample
	// period, 0 to 1.
	UtilizationRatio float64
	MemoryUsedBytes  float64
	MemoryTotalBytes float64
	TemperatureC     float64
	PowerWatts       float64
	// Processes are the compute processes running on the GPU.
	Processes []ProcessMemory
}

// ProcessMemory is one process's GPU memory.
type ProcessMemory struct {
	PID       int
	UsedBytes uint64
}

// StatsSource reads live GPU statistics; internal/gpu/nvmlgpu implements it.
type StatsSource interface {
	Stats() ([]Stats, error)
}
