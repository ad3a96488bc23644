//go:build cgo

package api

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/nvbind/nvbind/internal/gpu/nvmlgpu"
)

// TestMetricsFromDGXA100Mock: /metrics with NVML readings from go-nvml's
// DGX A100 mock through nvmlgpu, a compute process of a ledger container
// on GPU 0 counted as that container's memory.
func TestMetricsFromDGXA100Mock(t *testing.T) {
	s := dgxa100.New()
	for i, d := range s.Devices {
		dev := d.(*dgxa100.Device)
		i := i
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 50}, nvml.SUCCESS }
		dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 55, nvml.SUCCESS }
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 90500, nvml.SUCCESS }
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
			if i != 0 {
				return nil, nvml.SUCCESS
			}
			return []nvml.ProcessInfo{{Pid: 777, UsedGpuMemory: 5 << 30}}, nvml.SUCCESS
		}
	}
	f := newFixture(t, nvmlgpu.New(s))
	uuid, _ := s.Devices[0].GetUUID()
	mem, _ := s.Devices[0].GetMemoryInfo()
	e := entry("trainer", "team-a", false, 0)
	e.Devices[0].UUID = uuid
	f.l.Record(e)
	os.MkdirAll(filepath.Join(f.proc, "777"), 0o755)
	os.WriteFile(filepath.Join(f.proc, "777", "cgroup"), []byte("0::/machine.slice/libpod-trainer.scope/container\n"), 0o644)
	fams := scrape(t, f)
	if n := len(fams["nvbind_gpu_memory_total_bytes"].GetMetric()); n != 8 {
		t.Errorf("%d GPUs with memory metrics, want 8", n)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"nvbind_gpu_memory_total_bytes", map[string]string{"gpu": "0", "uuid": uuid}, float64(mem.Total)},
		{"nvbind_gpu_utilization_ratio", map[string]string{"gpu": "3"}, 0.5},
		{"nvbind_gpu_temperature_celsius", map[string]string{"gpu": "7"}, 55},
		{"nvbind_gpu_power_watts", map[string]string{"gpu": "0"}, 90.5},
		{"nvbind_container_gpu_memory_used_bytes", map[string]string{"container_id": "trainer", "gpu_uuid": uuid, "tenant": "team-a"}, 5 << 30},
		{"nvbind_container_gpu_info", map[string]string{"container_id": "trainer", "gpu_uuid": uuid}, 1},
		{"nvbind_nvml_up", nil, 1},
	} {
		if got, ok := value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
}
