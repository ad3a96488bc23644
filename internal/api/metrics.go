package api

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nvbind/nvbind/internal/ledger"
)

// metrics.go: /metrics. Ledger metrics (who holds which GPU) always;
// per-GPU readings when NVML is there. nvbind_container_gpu_info carries
// the GPU's UUID as gpu_uuid, to join onto dcgm-exporter's UUID label.

var (
	labelsGPU = []string{"gpu", "uuid"}
	descs     = struct {
		gpuInfo, gpuFree, gpuHolders, containerInfo, containers, nvmlUp      *prometheus.Desc
		util, memUsed, memTotal, temp, power, holder, containerMem, ledgerUp *prometheus.Desc
	}{
		gpuInfo:       prometheus.NewDesc("nvbind_gpu_info", "A GPU or MIG device nvbind knows (value 1).", []string{"gpu", "uuid", "name", "mig", "parent_uuid"}, nil),
		gpuFree:       prometheus.NewDesc("nvbind_gpu_free", "1 when no live container holds the GPU.", labelsGPU, nil),
		gpuHolders:    prometheus.NewDesc("nvbind_gpu_containers", "Live containers holding the GPU.", labelsGPU, nil),
		holder:        prometheus.NewDesc("nvbind_gpu_container_info", "The container holding a GPU (value 1; one series per holder).", []string{"gpu", "uuid", "container_id", "tenant", "exclusive"}, nil),
		containerInfo: prometheus.NewDesc("nvbind_container_gpu_info", "A GPU granted to a live container (value 1); gpu_uuid joins dcgm-exporter's UUID label.", []string{"container_id", "tenant", "profile", "gpu_uuid"}, nil),
		containers:    prometheus.NewDesc("nvbind_containers", "Live containers holding GPUs.", nil, nil),
		ledgerUp:      prometheus.NewDesc("nvbind_ledger_up", "1 when the ledger could be read.", nil, nil),
		nvmlUp:        prometheus.NewDesc("nvbind_nvml_up", "1 when NVML gave this scrape's GPU readings.", nil, nil),
		util:          prometheus.NewDesc("nvbind_gpu_utilization_ratio", "GPU busy share over NVML's last sample period (0-1).", labelsGPU, nil),
		memUsed:       prometheus.NewDesc("nvbind_gpu_memory_used_bytes", "GPU memory in use.", labelsGPU, nil),
		memTotal:      prometheus.NewDesc("nvbind_gpu_memory_total_bytes", "GPU memory in all.", labelsGPU, nil),
		temp:          prometheus.NewDesc("nvbind_gpu_temperature_celsius", "GPU temperature.", labelsGPU, nil),
		power:         prometheus.NewDesc("nvbind_gpu_power_watts", "GPU power draw.", labelsGPU, nil),
		containerMem:  prometheus.NewDesc("nvbind_container_gpu_memory_used_bytes", "GPU memory used by a container's compute processes, found through their cgroups.", []string{"container_id", "tenant", "gpu", "gpu_uuid"}, nil),
	}
)

type collector struct{ s *Server }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descs.gpuInfo, descs.gpuFree, descs.gpuHolders, descs.holder, descs.containerInfo,
		descs.containers, descs.ledgerUp, descs.nvmlUp, descs.util, descs.memUsed, descs.memTotal, descs.temp, descs.power, descs.containerMem} {
		ch <- d
	}
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	live, err := s.opts.Ledger.List()
	if err != nil {
		s.opts.Log.Warnf("metrics: %v", err)
		ch <- gauge(descs.ledgerUp, 0)
	} else {
		ch <- gauge(descs.ledgerUp, 1)
	}
	v := BuildView(s.inventory(), live)
	ch <- gauge(descs.containers, float64(len(live)))
	for _, g := range v.GPUs {
		ch <- gauge(descs.gpuInfo, 1, g.Index, g.UUID, g.Name, boolLabel(g.MIG), g.Parent)
		ch <- gauge(descs.gpuFree, b2f(g.Free), g.Index, g.UUID)
		ch <- gauge(descs.gpuHolders, float64(len(g.Holders)), g.Index, g.UUID)
		for _, h := range g.Holders {
			ch <- gauge(descs.holder, 1, g.Index, g.UUID, h.Container, h.Tenant, boolLabel(h.Exclusive))
		}
	}
	for _, e := range live {
		seen := map[string]bool{}
		for _, d := range e.Devices {
			u := d.UUID
			if u == "" {
				u = d.Index
			}
			if !seen[u] {
				seen[u] = true
				ch <- gauge(descs.containerInfo, 1, e.ID, e.Tenant, e.Profile, u)
			}
		}
	}
	if s.opts.Stats == nil {
		return
	}
	stats, err := s.opts.Stats.Stats()
	if err != nil {
		ch <- gauge(descs.nvmlUp, 0)
		return
	}
	ch <- gauge(descs.nvmlUp, 1)
	owners := newCgroupOwners(s.opts.ProcRoot, live)
	for _, st := range stats {
		idx := strconv.Itoa(st.Index)
		for _, m := range []struct {
			d *prometheus.Desc
			v float64
		}{{descs.util, st.UtilizationRatio}, {descs.memUsed, st.MemoryUsedBytes}, {descs.memTotal, st.MemoryTotalBytes},
			{descs.temp, st.TemperatureC}, {descs.power, st.PowerWatts}} {
			if m.v >= 0 {
				ch <- gauge(m.d, m.v, idx, st.UUID)
			}
		}
		used := map[*ledger.Entry]uint64{}
		for _, p := range st.Processes {
			if e := owners.owner(p.PID); e != nil {
				used[e] += p.UsedBytes
			}
		}
		for e, b := range used {
			ch <- gauge(descs.containerMem, float64(b), e.ID, e.Tenant, idx, st.UUID)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// cgroupOwners maps processes to live containers by their cgroup: every
// engine puts a container's processes in a cgroup whose path holds the
// container id (docker-<id>.scope, libpod-<id>.scope, cri-containerd-<id>,
// or runc's own <id>).
type cgroupOwners struct {
	proc string
	live []ledger.Entry
}

func newCgroupOwners(proc string, live []ledger.Entry) *cgroupOwners {
	return &cgroupOwners{proc: proc, live: live}
}

// owner is the live container pid runs in (nil: none nvbind knows).
func (o *cgroupOwners) owner(pid int) *ledger.Entry {
	data, err := os.ReadFile(filepath.Join(o.proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, comp := range strings.Split(parts[2], "/") {
			for i := range o.live {
				if cgroupNames(comp, o.live[i].ID) {
					return &o.live[i]
				}
			}
		}
	}
	return nil
}

// cgroupNames reports whether a cgroup path component is container id's.
func cgroupNames(comp, id string) bool {
	if id == "" {
		return false
	}
	comp = strings.TrimSuffix(comp, ".scope")
	return comp == id || strings.HasSuffix(comp, "-"+id)
}
