package deviceplugin

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/nvbind/nvbind/internal/gpu"
)

// Topology says how close two GPUs (by index) are: the higher, the faster
// they talk. NVMLTopology scores NVLink, PCIe switches and NUMA; without
// NVML, NUMATopology scores the NUMA node from sysfs only.
type Topology interface {
	Score(a, b int) int
}

// Scores a Topology adds up. NVLink counts most (per link), then how far
// up the PCIe tree the two GPUs meet, then the NUMA node.
const (
	scoreNVLinkPerLink = 100
	scoreNVLinkP2P     = 60 // NVLink peer-to-peer through NVSwitch
	scorePCIeSwitch    = 40 // same PCIe switch
	scorePCIeMulti     = 30 // several switches, no host bridge
	scoreHostBridge    = 20
	scoreSameNUMA      = 10
)

// NUMATopology scores GPUs on the same NUMA node as close.
type NUMATopology map[int]int

// Score implements Topology.
func (t NUMATopology) Score(a, b int) int {
	na, ok1 := t[a]
	nb, ok2 := t[b]
	if ok1 && ok2 && na >= 0 && na == nb {
		return scoreSameNUMA
	}
	return 0
}

// SysfsNUMA reads a GPU's NUMA node from <sysRoot>/bus/pci/devices/<bus
// id>/numa_node; -1 when unknown (one node, or no such file).
func SysfsNUMA(sysRoot string) func(g gpu.GPU) int {
	return func(g gpu.GPU) int {
		if g.BusID == "" {
			return -1
		}
		b, err := os.ReadFile(filepath.Join(sysRoot, "bus/pci/devices", strings.ToLower(g.BusID), "numa_node"))
		if err != nil {
			return -1
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || n < 0 {
			return -1
		}
		return n
	}
}

// maxExhaustive is the most candidate units for which every combination is
// scored (C(16,8) = 12870 sets); above it the choice is greedy.
const maxExhaustive = 16

// preferred picks size devices from available, keeping mustInclude, that
// are closest under topo. Shares of one GPU (time-slicing) count as the
// least close, so a pod asking for two shares gets two GPUs when it can.
// It returns nil when the request cannot be met (the kubelet then chooses).
func preferred(devs map[string]Device, available, mustInclude []string, size int, topo Topology) []string {
	if size <= 0 || size > len(available) || len(mustInclude) > size {
		return nil
	}
	avail := map[string]bool{}
	for _, id := range available {
		if _, ok := devs[id]; ok {
			avail[id] = true
		}
	}
	chosen := []string{}
	inChosen := map[string]bool{}
	for _, id := range mustInclude {
		if _, ok := devs[id]; !ok || inChosen[id] {
			return nil
		}
		chosen = append(chosen, id)
		inChosen[id] = true
	}
	var cands []string
	for id := range avail {
		if !inChosen[id] {
			cands = append(cands, id)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return lessID(devs, cands[i], cands[j]) })
	need := size - len(chosen)
	if need > len(cands) {
		return nil
	}
	pair := func(a, b string) int {
		da, db := devs[a], devs[b]
		if da.GPU == db.GPU {
			return -1 // two shares of one GPU: spread instead
		}
		return topo.Score(da.GPU, db.GPU)
	}
	setScore := func(set []string) int {
		s := 0
		for i := range set {
			for j := i + 1; j < len(set); j++ {
				s += pair(set[i], set[j])
			}
		}
		return s
	}
	if len(cands) <= maxExhaustive {
		best, bestScore := []string(nil), 0
		cur := append([]string(nil), chosen...)
		var walk func(start int)
		walk = func(start int) {
			if len(cur) == size {
				if s := setScore(cur); best == nil || s > bestScore {
					best, bestScore = append([]string(nil), cur...), s
				}
				return
			}
			for i := start; i <= len(cands)-(size-len(cur)); i++ {
				cur = append(cur, cands[i])
				walk(i + 1)
				cur = cur[:len(cur)-1]
			}
		}
		walk(0)
		return best
	}
	// Greedy: start from the must-include set (or the first candidate) and
	// add the candidate closest to what is chosen so far.
	if len(chosen) == 0 {
		chosen = append(chosen, cands[0])
		cands = cands[1:]
	}
	for len(chosen) < size {
		bi, bs := -1, 0
		for i, c := range cands {
			s := 0
			for _, x := range chosen {
				s += pair(c, x)
			}
			if bi < 0 || s > bs {
				bi, bs = i, s
			}
		}
		chosen = append(chosen, cands[bi])
		cands = append(cands[:bi], cands[bi+1:]...)
	}
	return chosen
}

// lessID orders devices by GPU index, then ID, so choices are stable.
func lessID(devs map[string]Device, a, b string) bool {
	if devs[a].GPU != devs[b].GPU {
		return devs[a].GPU < devs[b].GPU
	}
	return a < b
}
