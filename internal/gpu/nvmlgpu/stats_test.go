//go:build cgo

package nvmlgpu_test

import (
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/nvbind/nvbind/internal/gpu/nvmlgpu"
)

// TestStatsFromDGXA100Mock reads live statistics from go-nvml's DGX A100
// mock, given readings for the calls the mock leaves out; GPU 7 supports
// none of them (NOT_SUPPORTED), which gives -1, not an error.
func TestStatsFromDGXA100Mock(t *testing.T) {
	s := dgxa100.New()
	for i, d := range s.Devices {
		dev := d.(*dgxa100.Device)
		i := i
		if i == 7 {
			dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED }
			dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
			dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
			dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.ERROR_NOT_SUPPORTED }
			continue
		}
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{Gpu: uint32(10 * i)}, nvml.SUCCESS
		}
		dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return uint32(40 + i), nvml.SUCCESS }
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return uint32(100000 + i*1000), nvml.SUCCESS }
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
			return []nvml.ProcessInfo{{Pid: uint32(1000 + i), UsedGpuMemory: 1 << 30}}, nvml.SUCCESS
		}
	}
	stats, err := nvmlgpu.New(s).Stats()
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 8 {
		t.Fatalf("%d GPUs, want 8", len(stats))
	}
	g := stats[3]
	uuid, _ := s.Devices[3].GetUUID()
	mem, _ := s.Devices[3].GetMemoryInfo()
	if g.Index != 3 || g.UUID != uuid || g.UtilizationRatio != 0.3 || g.TemperatureC != 43 || g.PowerWatts != 103 ||
		g.MemoryTotalBytes != float64(mem.Total) || g.MemoryTotalBytes == 0 || g.MemoryUsedBytes != float64(mem.Used) ||
		len(g.Processes) != 1 || g.Processes[0].PID != 1003 || g.Processes[0].UsedBytes != 1<<30 {
		t.Errorf("GPU 3: %+v", g)
	}
	if g := stats[7]; g.UtilizationRatio != -1 || g.TemperatureC != -1 || g.PowerWatts != -1 || len(g.Processes) != 0 || g.MemoryTotalBytes <= 0 {
		t.Errorf("GPU 7 (readings not supported): %+v", g)
	}
}
