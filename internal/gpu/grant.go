package gpu

import (
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Granted is one GPU or MIG device a container gets, named every way the
// ledger and `nvbind ps` need: a request may name a GPU by index, UUID or
// "all", and all three must count as the same GPU.
type Granted struct {
	// Name is the CDI device name asked for (kind=name).
	Name  string
	Index string // "0", or "0:1" for MIG
	UUID  string // "" when unknown (MIG on the procfs path)
	// Parent is a MIG device's GPU UUID.
	Parent string
	MIG    bool
}

// GrantedDevices resolves devices (qualified CDI names; those of kinds
// other than the ones isGPUKind accepts, driver and capability devices are
// skipped) against inv. A name inv does not know is kept by name alone:
// the create goes on and fails on the CDI spec if the device is truly
// missing.
func GrantedDevices(inv *Inventory, isGPUKind func(kind string) bool, devices []string) []Granted {
	var out []Granted
	seen := map[string]bool{}
	add := func(g Granted) {
		key := g.UUID
		if key == "" {
			key = g.Index
		}
		if key == "" {
			key = g.Name
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, g)
		}
	}
	for _, d := range devices {
		kind, name, ok := strings.Cut(d, "=")
		if !ok || !isGPUKind(kind) || name == DeviceDriver || strings.HasPrefix(name, CapabilityDevicePrefix) {
			continue
		}
		if name == DeviceAll {
			for _, g := range inv.GPUs {
				add(Granted{Name: kind + "=" + strconv.Itoa(g.Index), Index: strconv.Itoa(g.Index), UUID: g.UUID})
			}
			continue
		}
		add(resolveOne(inv, kind, name))
	}
	return out
}

func resolveOne(inv *Inventory, kind, name string) Granted {
	gpuIdx, migIdx, isPair := strings.Cut(name, ":")
	for _, g := range inv.GPUs {
		idx := strconv.Itoa(g.Index)
		if name == idx || name == g.UUID {
			return Granted{Name: kind + "=" + name, Index: idx, UUID: g.UUID}
		}
		for _, m := range g.MIGDevices {
			mi := strconv.Itoa(m.Index)
			if (m.UUID != "" && name == m.UUID) || (isPair && gpuIdx == idx && migIdx == mi) {
				return Granted{Name: kind + "=" + name, Index: idx + ":" + mi, UUID: m.UUID, Parent: g.UUID, MIG: true}
			}
		}
	}
	g := Granted{Name: kind + "=" + name, MIG: isPair || strings.HasPrefix(name, "MIG-")}
	switch {
	case strings.HasPrefix(name, "GPU-") || strings.HasPrefix(name, "MIG-"):
		g.UUID = name
	default:
		g.Index = name
	}
	return g
}

// ResolveGranted is GrantedDevices for the runtime's hot path: GPUs asked
// for by index or GPU UUID are looked up in procfs reading only the
// information files needed (GPU indices are the PCI bus order of
// proc/driver/nvidia/gpus, as in discoverProcfs). "all" and MIG UUIDs take
// the full procfs discovery.
func ResolveGranted(root string, isGPUKind func(kind string) bool, devices []string) []Granted {
	full := false
	for _, d := range devices {
		kind, name, _ := strings.Cut(d, "=")
		full = full || isGPUKind(kind) && (name == DeviceAll || strings.HasPrefix(name, "MIG-"))
	}
	names := GrantedDevices(&Inventory{}, isGPUKind, devices)
	if len(names) == 0 && !full {
		return nil
	}
	root = cleanRoot(root)
	dir := filepath.Join(procRoot(root), "proc/driver/nvidia/gpus")
	if full {
		inv, err := discoverProcfs(root)
		if err != nil {
			return names
		}
		return GrantedDevices(inv, isGPUKind, devices)
	}
	ents, err := readDirNames(dir) // sorted: bus order
	if err != nil {
		return names
	}
	info := map[int]*GPU{}
	read := func(i int) *GPU {
		if g, ok := info[i]; ok {
			return g
		}
		var g *GPU
		if i >= 0 && i < len(ents) {
			if data, err := readSmallFile(filepath.Join(dir, ents[i], "information")); err == nil {
				if p, err := parseInformation(data); err == nil {
					p.Index = i
					g = &p
				}
			}
		}
		info[i] = g
		return g
	}
	for k, n := range names {
		gpuIdx, migIdx, isPair := strings.Cut(n.Index, ":")
		switch {
		case n.Index != "":
			i, err := strconv.Atoi(gpuIdx)
			if g := read(i); err == nil && g != nil {
				if isPair {
					names[k].Parent = g.UUID
					names[k].Index = strconv.Itoa(i) + ":" + migIdx
				} else {
					names[k].UUID = g.UUID
				}
			}
		case strings.HasPrefix(n.UUID, "GPU-"):
			for i := range ents {
				if g := read(i); g != nil && g.UUID == n.UUID {
					names[k].Index = strconv.Itoa(i)
					break
				}
			}
		}
	}
	return names
}

// readDirNames lists dir, sorted, and readSmallFile reads a procfs file:
// plain system calls, as os.File registers each file with Go's poller,
// which costs the runtime's create path more than the reads themselves.
func readDirNames(dir string) ([]string, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	sort.Strings(names)
	return names, nil
}

func readSmallFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for len(buf) < 64<<10 {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
	return buf, nil
}

// AsksForGPU reports whether devices name a GPU or MIG device of a kind
// isGPUKind accepts ("all" included; driver and capability devices not).
func AsksForGPU(isGPUKind func(kind string) bool, devices []string) bool {
	for _, d := range devices {
		kind, name, ok := strings.Cut(d, "=")
		if ok && isGPUKind(kind) && name != DeviceDriver && !strings.HasPrefix(name, CapabilityDevicePrefix) {
			return true
		}
	}
	return false
}
