//go:build cgo

package nvmlgpu

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/nvbind/nvbind/internal/gpu"
)

// Stats implements gpu.StatsSource: utilization, memory, temperature,
// power and the compute processes of every GPU. A reading a GPU does not
// support is -1, not an error.
func (s *Source) Stats() ([]gpu.Stats, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	n, ret := s.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, nvmlErr("device count", ret)
	}
	var out []gpu.Stats
	for i := 0; i < n; i++ {
		dev, ret := s.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, nvmlErr(fmt.Sprintf("GPU %d", i), ret)
		}
		st := gpu.Stats{Index: i, UtilizationRatio: -1, MemoryUsedBytes: -1, MemoryTotalBytes: -1, TemperatureC: -1, PowerWatts: -1}
		if st.UUID, ret = dev.GetUUID(); ret != nvml.SUCCESS {
			return nil, nvmlErr(fmt.Sprintf("GPU %d UUID", i), ret)
		}
		if u, ret := dev.GetUtilizationRates(); ret == nvml.SUCCESS {
			st.UtilizationRatio = float64(u.Gpu) / 100
		}
		if m, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
			st.MemoryUsedBytes, st.MemoryTotalBytes = float64(m.Used), float64(m.Total)
		}
		if t, ret := dev.GetTemperature(nvml.TEMPERATURE_GPU); ret == nvml.SUCCESS {
			st.TemperatureC = float64(t)
		}
		if mw, ret := dev.GetPowerUsage(); ret == nvml.SUCCESS {
			st.PowerWatts = float64(mw) / 1000
		}
		if ps, ret := dev.GetComputeRunningProcesses(); ret == nvml.SUCCESS {
			for _, p := range ps {
				st.Processes = append(st.Processes, gpu.ProcessMemory{PID: int(p.Pid), UsedBytes: p.UsedGpuMemory})
			}
		}
		out = append(out, st)
	}
	return out, nil
}
