//go:build cgo

package deviceplugin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/nvmlgpu"
)

// NVML gives the plugin NVML's topology and health events. Lib must be
// initialised by the caller (nvml.Init).
type NVML struct {
	Lib nvml.Interface
	// IgnoredXIDs do not make a GPU unhealthy (DefaultIgnoredXIDs).
	IgnoredXIDs []uint64
	// waitMillis bounds one event wait, so Watch sees ctx end.
	waitMillis uint32
}

// OpenNVML loads and initialises the libnvidia-ml.so.1 under driverRoot.
func OpenNVML(driverRoot string) (nvml.Interface, error) {
	path, ok := gpu.FindLibrary(driverRoot, "libnvidia-ml.so.1")
	if !ok {
		return nil, fmt.Errorf("libnvidia-ml.so.1 not found under %s", driverRoot)
	}
	lib := nvml.New(nvml.WithLibraryPath(path))
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML init: %s", nvml.ErrorString(ret))
	}
	return lib, nil
}

// Topology scores every pair of the inventory's GPUs from NVML (NVLink
// links between them, NVLink peer-to-peer through NVSwitch, where their
// PCIe paths meet) plus numa's NUMA nodes.
func (n *NVML) Topology(inv *gpu.Inventory, numa func(gpu.GPU) int) (Topology, error) {
	devs := map[int]nvml.Device{}
	bus := map[string]int{}
	nodes := NUMATopology{}
	for _, g := range inv.GPUs {
		d, ret := n.Lib.DeviceGetHandleByUUID(g.UUID)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("NVML GPU %s: %s", g.UUID, nvml.ErrorString(ret))
		}
		devs[g.Index] = d
		bus[strings.ToLower(g.BusID)] = g.Index
		nodes[g.Index] = numa(g)
	}
	t := pairScores{}
	for a, da := range devs {
		// Direct NVLink links: count those whose far end is another GPU.
		for l := 0; l < nvml.NVLINK_MAX_LINKS; l++ {
			st, ret := da.GetNvLinkState(l)
			if ret != nvml.SUCCESS || st != nvml.FEATURE_ENABLED {
				continue
			}
			pci, ret := da.GetNvLinkRemotePciInfo(l)
			if ret != nvml.SUCCESS {
				continue
			}
			if b, ok := bus[nvmlgpu.BusID(pci)]; ok && b != a {
				t.add(a, b, scoreNVLinkPerLink)
			}
		}
		for b, db := range devs {
			if b <= a {
				continue
			}
			s := nodes.Score(a, b)
			if t[key(a, b)] == 0 {
				if st, ret := da.GetP2PStatus(db, nvml.P2P_CAPS_INDEX_NVLINK); ret == nvml.SUCCESS && st == nvml.P2P_STATUS_OK {
					s += scoreNVLinkP2P
				}
			}
			if lvl, ret := da.GetTopologyCommonAncestor(db); ret == nvml.SUCCESS {
				switch lvl {
				case nvml.TOPOLOGY_INTERNAL, nvml.TOPOLOGY_SINGLE:
					s += scorePCIeSwitch
				case nvml.TOPOLOGY_MULTIPLE:
					s += scorePCIeMulti
				case nvml.TOPOLOGY_HOSTBRIDGE:
					s += scoreHostBridge
				}
			}
			t.add(a, b, s)
		}
	}
	return t, nil
}

// pairScores is a Topology from precomputed pair scores.
type pairScores map[[2]int]int

func key(a, b int) [2]int {
	if a > b {
		a, b = b, a
	}
	return [2]int{a, b}
}

func (p pairScores) add(a, b, s int) { p[key(a, b)] += s }

// Score implements Topology. Links are counted from both ends, which
// doubles every pair's NVLink score alike.
func (p pairScores) Score(a, b int) int { return p[key(a, b)] }

// Watch implements HealthMonitor with NVML events: Xid critical errors
// not in IgnoredXIDs, and double-bit ECC errors.
func (n *NVML) Watch(ctx context.Context, uuids []string, events chan<- HealthEvent) error {
	set, ret := n.Lib.EventSetCreate()
	if ret != nvml.SUCCESS {
		return fmt.Errorf("NVML event set: %s", nvml.ErrorString(ret))
	}
	defer set.Free()
	byHandle := map[nvml.Device]string{}
	registered := 0
	for _, u := range uuids {
		d, ret := n.Lib.DeviceGetHandleByUUID(u)
		if ret != nvml.SUCCESS {
			return fmt.Errorf("NVML GPU %s: %s", u, nvml.ErrorString(ret))
		}
		want := uint64(nvml.EventTypeXidCriticalError | nvml.EventTypeDoubleBitEccError)
		if sup, ret := d.GetSupportedEventTypes(); ret == nvml.SUCCESS {
			want &= sup
		}
		if want == 0 {
			continue
		}
		if ret := d.RegisterEvents(want, set); ret != nvml.SUCCESS {
			return fmt.Errorf("NVML GPU %s: register events: %s", u, nvml.ErrorString(ret))
		}
		byHandle[d] = u
		registered++
	}
	if registered == 0 {
		return errors.New("no GPU supports NVML health events")
	}
	wait := n.waitMillis
	if wait == 0 {
		wait = 5000
	}
	for ctx.Err() == nil {
		e, ret := set.Wait(wait)
		if ret == nvml.ERROR_TIMEOUT {
			continue
		}
		if ret != nvml.SUCCESS {
			return fmt.Errorf("NVML event wait: %s", nvml.ErrorString(ret))
		}
		ev, ok := n.event(e, byHandle)
		if !ok {
			continue
		}
		select {
		case events <- ev:
		case <-ctx.Done():
		}
	}
	return nil
}

// event turns an NVML event into a HealthEvent; ok is false for events that
// leave the GPU healthy (ignored Xids, other types).
func (n *NVML) event(e nvml.EventData, byHandle map[nvml.Device]string) (HealthEvent, bool) {
	var reason string
	switch e.EventType {
	case nvml.EventTypeXidCriticalError:
		if !CriticalXID(e.EventData, n.IgnoredXIDs) {
			return HealthEvent{}, false
		}
		reason = fmt.Sprintf("Xid %d", e.EventData)
	case nvml.EventTypeDoubleBitEccError:
		reason = "double-bit ECC error"
	default:
		return HealthEvent{}, false
	}
	u, ok := byHandle[e.Device]
	if !ok && e.Device != nil {
		// Another handle for a GPU we watch.
		if uu, ret := e.Device.GetUUID(); ret == nvml.SUCCESS {
			u, ok = uu, true
		}
	}
	if !ok {
		return HealthEvent{}, false
	}
	return HealthEvent{UUID: u, Reason: reason}, true
}

// Probe implements HealthMonitor: the GPU answers NVML again (not lost,
// memory readable) and has no uncorrected ECC error since its last reset.
func (n *NVML) Probe(uuid string) error {
	d, ret := n.Lib.DeviceGetHandleByUUID(uuid)
	if ret != nvml.SUCCESS {
		return fmt.Errorf("NVML: %s", nvml.ErrorString(ret))
	}
	if _, ret := d.GetMemoryInfo(); ret != nvml.SUCCESS {
		return fmt.Errorf("NVML memory info: %s", nvml.ErrorString(ret))
	}
	if c, ret := d.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC); ret == nvml.SUCCESS && c > 0 {
		return fmt.Errorf("%d uncorrected ECC error(s) since the last GPU reset", c)
	}
	return nil
}

// OpenNVMLBackend opens NVML under driverRoot and gives its topology for
// inv and its health monitor.
func OpenNVMLBackend(driverRoot string, ignoredXIDs []uint64, inv *gpu.Inventory, numa func(gpu.GPU) int) (Topology, HealthMonitor, error) {
	lib, err := OpenNVML(driverRoot)
	if err != nil {
		return nil, nil, err
	}
	n := &NVML{Lib: lib, IgnoredXIDs: ignoredXIDs}
	topo, err := n.Topology(inv, numa)
	if err != nil {
		return nil, nil, err
	}
	return topo, n, nil
}
