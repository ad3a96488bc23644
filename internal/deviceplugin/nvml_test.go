//go:build cgo

package deviceplugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/nvbind/nvbind/internal/gpu"
)

// dgxTopology gives go-nvml's DGX A100 mock (8 A100) the topology of the
// real machine: every GPU on the NVSwitch fabric (NVLink peer-to-peer, the
// links ending at switches), GPUs in pairs behind a PCIe switch, GPUs 0-3
// on NUMA node 0 and 4-7 on node 1. direct adds NVLink links straight
// between two GPUs and turns the NVSwitch fabric off.
func dgxTopology(t *testing.T, direct map[int]int) (*dgxa100.Server, *gpu.Inventory, string) {
	t.Helper()
	s := dgxa100.New()
	sys := t.TempDir()
	inv := &gpu.Inventory{}
	bus := func(i int) string { return fmt.Sprintf("0000:%02x:00.0", 0x07+0x10*i) }
	for i, d := range s.Devices {
		dev := d.(*dgxa100.Device)
		dev.PciBusID = bus(i)
		inv.GPUs = append(inv.GPUs, gpu.GPU{Index: i, UUID: dev.UUID, BusID: bus(i)})
		dir := filepath.Join(sys, "bus/pci/devices", bus(i))
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "numa_node"), []byte(fmt.Sprintln(i/4)), 0o644)
	}
	for i, d := range s.Devices {
		i, dev := i, d.(*dgxa100.Device)
		peer, hasPeer := direct[i]
		dev.GetNvLinkStateFunc = func(l int) (nvml.EnableState, nvml.Return) {
			if l < 12 {
				return nvml.FEATURE_ENABLED, nvml.SUCCESS
			}
			return nvml.FEATURE_DISABLED, nvml.SUCCESS
		}
		dev.GetNvLinkRemotePciInfoFunc = func(l int) (nvml.PciInfo, nvml.Return) {
			remote := "00000000:C0:00.0" // an NVSwitch
			if hasPeer {
				remote = "0000" + strings.ToUpper(bus(peer))
			}
			var p nvml.PciInfo
			for k := range remote {
				p.BusId[k] = int8(remote[k])
			}
			return p, nvml.SUCCESS
		}
		dev.GetP2PStatusFunc = func(other nvml.Device, _ nvml.GpuP2PCapsIndex) (nvml.GpuP2PStatus, nvml.Return) {
			if direct != nil {
				return nvml.P2P_STATUS_NOT_SUPPORTED, nvml.SUCCESS
			}
			return nvml.P2P_STATUS_OK, nvml.SUCCESS
		}
		dev.GetTopologyCommonAncestorFunc = func(other nvml.Device) (nvml.GpuTopologyLevel, nvml.Return) {
			j := other.(*dgxa100.Device).Index
			switch {
			case i/2 == j/2:
				return nvml.TOPOLOGY_MULTIPLE, nvml.SUCCESS
			case i/4 == j/4:
				return nvml.TOPOLOGY_NODE, nvml.SUCCESS
			}
			return nvml.TOPOLOGY_SYSTEM, nvml.SUCCESS
		}
	}
	return s, inv, sys
}

func TestPreferredOnDGXA100(t *testing.T) {
	tests := []struct {
		name        string
		direct      map[int]int
		avail, must []int
		size        int
		want        []int
	}{
		{name: "pair behind one PCIe switch", avail: []int{0, 1, 2, 3, 4, 5, 6, 7}, size: 2, want: []int{0, 1}},
		{name: "the pair left whole", avail: []int{0, 2, 4, 6, 7}, size: 2, want: []int{6, 7}},
		{name: "half the machine: one NUMA node", avail: []int{0, 1, 2, 3, 4, 5, 6, 7}, size: 4, want: []int{0, 1, 2, 3}},
		{name: "NUMA node 1 when 0 is broken up", avail: []int{0, 1, 4, 5, 6, 7}, size: 4, want: []int{4, 5, 6, 7}},
		{name: "must include GPU 5", avail: []int{0, 1, 2, 3, 4, 5, 6, 7}, must: []int{5}, size: 2, want: []int{5, 4}},
		{name: "direct NVLink beats NUMA", direct: map[int]int{0: 5, 5: 0}, avail: []int{0, 2, 5, 7}, size: 2, want: []int{0, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, inv, sys := dgxTopology(t, tt.direct)
			n := &NVML{Lib: s}
			topo, err := n.Topology(inv, SysfsNUMA(sys))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Build(inv, BuildOptions{ResourceName: "nvidia.com/gpu", NUMA: SysfsNUMA(sys)})
			if err != nil {
				t.Fatal(err)
			}
			devs := map[string]Device{}
			for _, d := range res[0].Devices {
				devs[d.ID] = d
				if d.NUMA != d.GPU/4 {
					t.Errorf("GPU %d on NUMA node %d, want %d", d.GPU, d.NUMA, d.GPU/4)
				}
			}
			uuid := func(idx []int) []string {
				var out []string
				for _, i := range idx {
					out = append(out, inv.GPUs[i].UUID)
				}
				return out
			}
			got := preferred(devs, uuid(tt.avail), uuid(tt.must), tt.size, topo)
			var gotIdx []int
			for _, id := range got {
				gotIdx = append(gotIdx, devs[id].GPU)
			}
			want := append([]int(nil), tt.want...)
			if len(tt.must) == 0 {
				sort.Ints(gotIdx)
			}
			if !reflect.DeepEqual(gotIdx, want) {
				t.Errorf("preferred = %v, want %v", gotIdx, want)
			}
		})
	}
}

func TestNVMLHealthEvents(t *testing.T) {
	s, inv, _ := dgxTopology(t, nil)
	dev := func(i int) nvml.Device { return s.Devices[i] }
	queue := make(chan nvml.EventData, 8)
	queue <- nvml.EventData{Device: dev(0), EventType: nvml.EventTypeXidCriticalError, EventData: 13} // ignored
	queue <- nvml.EventData{Device: dev(1), EventType: nvml.EventTypeXidCriticalError, EventData: 79}
	queue <- nvml.EventData{Device: dev(2), EventType: nvml.EventTypeSingleBitEccError} // not critical
	queue <- nvml.EventData{Device: dev(3), EventType: nvml.EventTypeDoubleBitEccError}
	registered := 0
	s.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) {
		return &mock.EventSet{
			WaitFunc: func(ms uint32) (nvml.EventData, nvml.Return) {
				select {
				case e := <-queue:
					return e, nvml.SUCCESS
				case <-time.After(time.Duration(ms) * time.Millisecond):
					return nvml.EventData{}, nvml.ERROR_TIMEOUT
				}
			},
			FreeFunc: func() nvml.Return { return nvml.SUCCESS },
		}, nvml.SUCCESS
	}
	ecc := map[int]uint64{3: 1}
	for i, d := range s.Devices {
		i, dev := i, d.(*dgxa100.Device)
		dev.GetSupportedEventTypesFunc = func() (uint64, nvml.Return) {
			return nvml.EventTypeXidCriticalError | nvml.EventTypeDoubleBitEccError | nvml.EventTypeSingleBitEccError, nvml.SUCCESS
		}
		dev.RegisterEventsFunc = func(types uint64, _ nvml.EventSet) nvml.Return {
			if types != nvml.EventTypeXidCriticalError|nvml.EventTypeDoubleBitEccError {
				t.Errorf("GPU %d registered for events %#x", i, types)
			}
			registered++
			return nvml.SUCCESS
		}
		dev.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) {
			return ecc[i], nvml.SUCCESS
		}
	}
	n := &NVML{Lib: s, IgnoredXIDs: DefaultIgnoredXIDs, waitMillis: 20}
	var uuids []string
	for _, g := range inv.GPUs {
		uuids = append(uuids, g.UUID)
	}
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan HealthEvent)
	done := make(chan error, 1)
	go func() { done <- n.Watch(ctx, uuids, events) }()
	var got []HealthEvent
	for len(got) < 2 {
		select {
		case ev := <-events:
			got = append(got, ev)
		case <-time.After(5 * time.Second):
			t.Fatalf("events = %v, want 2", got)
		}
	}
	select {
	case ev := <-events:
		t.Errorf("unexpected event %v", ev)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []HealthEvent{{UUID: uuids[1], Reason: "Xid 79"}, {UUID: uuids[3], Reason: "double-bit ECC error"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	if registered != 8 {
		t.Errorf("%d GPUs registered for events, want 8", registered)
	}
	// Probes: GPU 1 answers again; GPU 3 keeps its uncorrected ECC error
	// until reset, then passes.
	if err := n.Probe(uuids[1]); err != nil {
		t.Errorf("probe GPU 1: %v", err)
	}
	if err := n.Probe(uuids[3]); err == nil || !strings.Contains(err.Error(), "uncorrected ECC") {
		t.Errorf("probe GPU 3 = %v, want the ECC error", err)
	}
	ecc[3] = 0
	if err := n.Probe(uuids[3]); err != nil {
		t.Errorf("probe GPU 3 after reset: %v", err)
	}
}
