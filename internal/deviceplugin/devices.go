// Package deviceplugin is nvbind's kubelet device plugin (API v1beta1): it
// advertises the node's GPUs (or MIG devices, or time-sliced shares of
// them) with their NUMA node, streams their health, prefers close GPUs for
// multi-GPU pods and answers Allocate with CDI device names that
// nvbind-runtime (or a CDI-aware containerd) resolves.
//
// It is linked by the nvbind CLI only; nvbind-runtime never imports it (it
// pulls in gRPC).
package deviceplugin

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nvbind/nvbind/internal/gpu"
)

// MIG strategies, named as NVIDIA's device plugin names them.
const (
	// MIGNone advertises whole GPUs, MIG mode or not.
	MIGNone = "none"
	// MIGSingle advertises the MIG devices under the one resource name;
	// every GPU must be in MIG mode with one profile (or not in MIG mode).
	MIGSingle = "single"
	// MIGMixed advertises each MIG profile as its own resource,
	// <domain>/mig-<profile>, and whole GPUs under the resource name.
	MIGMixed = "mixed"
)

// MIGStrategies lists the accepted MIG strategies.
var MIGStrategies = []string{MIGNone, MIGSingle, MIGMixed}

// Device is one schedulable unit: a GPU, a MIG device, or a time-sliced
// share of either.
type Device struct {
	// ID is what the kubelet sees: the GPU or MIG UUID, with "::<n>"
	// appended for replica n when time-slicing.
	ID string
	// GPU is the parent GPU's index, the key for health and topology.
	GPU int
	// GPUUUID is the parent GPU's UUID.
	GPUUUID string
	// CDIName is the device's name in the CDI spec ("GPU-...", "0:1").
	CDIName string
	// NUMA is the NUMA node of the parent GPU; -1 when unknown.
	NUMA int
}

// Resource is one advertised resource and its devices.
type Resource struct {
	Name    string
	Devices []Device
}

// BuildOptions says how to turn an inventory into resources.
type BuildOptions struct {
	// ResourceName is the resource for whole GPUs (and, with MIGSingle,
	// MIG devices), e.g. nvidia.com/gpu.
	ResourceName string
	MIGStrategy  string
	// Replicas > 1 advertises that many shares per device (time-slicing).
	Replicas int
	// NUMA gives a GPU's NUMA node (-1 when unknown); nil means unknown.
	NUMA func(g gpu.GPU) int
}

// Build turns the inventory into the resources to advertise, each with its
// devices in a stable order. A resource with no device is left out.
func Build(inv *gpu.Inventory, opts BuildOptions) ([]Resource, error) {
	if err := checkResourceName(opts.ResourceName); err != nil {
		return nil, err
	}
	if opts.Replicas < 1 {
		opts.Replicas = 1
	}
	numa := opts.NUMA
	if numa == nil {
		numa = func(gpu.GPU) int { return -1 }
	}
	domain, _, _ := strings.Cut(opts.ResourceName, "/")
	byName := map[string][]Device{}
	add := func(res string, d Device) {
		for r := 0; r < opts.Replicas; r++ {
			c := d
			if opts.Replicas > 1 {
				c.ID = fmt.Sprintf("%s::%d", d.ID, r)
			}
			byName[res] = append(byName[res], c)
		}
	}
	var profiles []string
	for _, g := range inv.GPUs {
		whole := Device{ID: g.UUID, GPU: g.Index, GPUUUID: g.UUID, CDIName: g.UUID, NUMA: numa(g)}
		if g.UUID == "" {
			whole.ID, whole.CDIName = fmt.Sprint(g.Index), fmt.Sprint(g.Index)
		}
		if !g.MIGEnabled || opts.MIGStrategy == MIGNone || opts.MIGStrategy == "" {
			add(opts.ResourceName, whole)
			continue
		}
		for _, m := range g.MIGDevices {
			name := fmt.Sprintf("%d:%d", g.Index, m.Index)
			d := Device{ID: m.UUID, GPU: g.Index, GPUUUID: g.UUID, CDIName: name, NUMA: whole.NUMA}
			if m.UUID == "" {
				// The procfs path knows no MIG UUID; the index name is
				// stable as long as the MIG layout is.
				d.ID = "MIG-" + strings.ReplaceAll(name, ":", "-")
			}
			switch opts.MIGStrategy {
			case MIGSingle:
				profiles = append(profiles, m.Profile)
				add(opts.ResourceName, d)
			case MIGMixed:
				if m.Profile == "" {
					return nil, fmt.Errorf("mig strategy mixed: GPU %d MIG device %d has no known profile (NVML is needed)", g.Index, m.Index)
				}
				add(domain+"/mig-"+m.Profile, d)
			default:
				return nil, fmt.Errorf("unknown mig strategy %q (want %s)", opts.MIGStrategy, strings.Join(MIGStrategies, ", "))
			}
		}
	}
	if opts.MIGStrategy != "" && opts.MIGStrategy != MIGNone && opts.MIGStrategy != MIGSingle && opts.MIGStrategy != MIGMixed {
		return nil, fmt.Errorf("unknown mig strategy %q (want %s)", opts.MIGStrategy, strings.Join(MIGStrategies, ", "))
	}
	if opts.MIGStrategy == MIGSingle {
		if err := checkSingle(inv, profiles); err != nil {
			return nil, err
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Resource
	for _, n := range names {
		out = append(out, Resource{Name: n, Devices: byName[n]})
	}
	return out, nil
}

// checkSingle refuses a node the single strategy cannot describe: GPUs with
// and without MIG mode mixed, or MIG devices of several profiles under one
// resource name (a pod could not know what it gets).
func checkSingle(inv *gpu.Inventory, profiles []string) error {
	mig := 0
	for _, g := range inv.GPUs {
		if g.MIGEnabled {
			mig++
		}
	}
	if mig > 0 && mig != len(inv.GPUs) {
		return fmt.Errorf("mig strategy single: %d of %d GPUs are in MIG mode; all or none must be (use mixed)", mig, len(inv.GPUs))
	}
	for _, p := range profiles {
		if p != profiles[0] {
			return fmt.Errorf("mig strategy single: MIG devices of profiles %s and %s; one profile only (use mixed)", profiles[0], p)
		}
	}
	return nil
}

// checkResourceName accepts an extended resource name: <domain>/<name>.
func checkResourceName(name string) error {
	domain, res, ok := strings.Cut(name, "/")
	if !ok || domain == "" || res == "" || strings.Contains(res, "/") || !strings.Contains(domain, ".") ||
		strings.HasSuffix(domain, "kubernetes.io") {
		return fmt.Errorf("resource name %q: want <domain>/<name>, e.g. nvidia.com/gpu (not under kubernetes.io)", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-._/", c)) {
			return fmt.Errorf("resource name %q: invalid character %q", name, c)
		}
	}
	if _, err := annotationKey(name); err != nil {
		return fmt.Errorf("resource name %q: %v", name, err)
	}
	return nil
}

// SocketName is the plugin's socket in the device plugin directory:
// nvbind-<resource with / and . as ->.sock.
func SocketName(resource string) string {
	return "nvbind-" + strings.NewReplacer("/", "-", ".", "-").Replace(resource) + ".sock"
}
