//go:build cgo

// Package nvmlgpu discovers GPUs through NVML (go-nvml, a cgo package). It
// is kept apart from internal/gpu so that only the user CLI links it; the
// runtime and the hook stay pure Go and never load NVML. Built without cgo
// it reports NVML as unavailable and discovery uses procfs.
package nvmlgpu

import (
	"debug/elf"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/nvbind/nvbind/internal/gpu"
)

// Source is a gpu.NVMLSource backed by an NVML library. NVML is
// initialised at most once per Source and never shut down (the CLI is
// short-lived; Init is the expensive part).
type Source struct {
	lib     nvml.Interface
	once    sync.Once
	initErr error
}

// New wraps lib (the real library or one of go-nvml's mocks).
func New(lib nvml.Interface) *Source { return &Source{lib: lib} }

var (
	sharedMu sync.Mutex
	shared   = map[string]*Source{}
)

// ForRoot returns the process-wide Source for a driver root, using the
// libnvidia-ml.so.1 installed under root (the host's for "/", a driver
// container's for /run/nvidia/driver). The library is checked to export
// NVML's entry points before it is loaded: go-nvml calls them without
// looking, and a library without them would kill the process.
func ForRoot(root string) *Source {
	if root == "" {
		root = "/"
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if s := shared[root]; s != nil {
		return s
	}
	s := &Source{}
	lib, ok := gpu.FindLibrary(root, "libnvidia-ml.so.1")
	if !ok {
		s.initErr = fmt.Errorf("libnvidia-ml.so.1 not found under %s", root)
	} else if err := exportsNVML(lib); err != nil {
		s.initErr = err
	} else {
		s.lib = nvml.New(nvml.WithLibraryPath(lib))
	}
	if s.initErr != nil {
		s.once.Do(func() {})
	}
	shared[root] = s
	return s
}

// exportsNVML checks that the library defines the symbols NVML init needs.
func exportsNVML(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, s := range syms {
		if s.Name == "nvmlInit_v2" && s.Section != elf.SHN_UNDEF {
			return nil
		}
	}
	return fmt.Errorf("%s does not export nvmlInit_v2 (not a usable NVML library)", path)
}

func (s *Source) init() error {
	s.once.Do(func() {
		if s.lib == nil {
			s.initErr = errors.New("no NVML library")
			return
		}
		if ret := s.lib.Init(); ret != nvml.SUCCESS {
			s.initErr = fmt.Errorf("NVML init: %s", nvml.ErrorString(ret))
		}
	})
	return s.initErr
}

// Inventory implements gpu.NVMLSource.
func (s *Source) Inventory() (*gpu.Inventory, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	inv := &gpu.Inventory{Source: gpu.SourceNVML}
	var ret nvml.Return
	if inv.DriverVersion, ret = s.lib.SystemGetDriverVersion(); ret != nvml.SUCCESS {
		return nil, nvmlErr("driver version", ret)
	}
	if v, ret := s.lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS && v > 0 {
		inv.CUDAVersion = fmt.Sprintf("%d.%d", v/1000, v%1000/10)
	}
	n, ret := s.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, nvmlErr("device count", ret)
	}
	for i := 0; i < n; i++ {
		dev, ret := s.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, nvmlErr(fmt.Sprintf("GPU %d", i), ret)
		}
		g, err := device(i, dev)
		if err != nil {
			return nil, err
		}
		inv.GPUs = append(inv.GPUs, g)
	}
	return inv, nil
}

func device(i int, dev nvml.Device) (gpu.GPU, error) {
	g := gpu.GPU{Index: i}
	var ret nvml.Return
	// WSL2 has no device minors (one /dev/dxg serves every GPU).
	if g.Minor, ret = dev.GetMinorNumber(); ret == nvml.ERROR_NOT_SUPPORTED {
		g.Minor = -1
	} else if ret != nvml.SUCCESS {
		return g, nvmlErr(fmt.Sprintf("GPU %d minor", i), ret)
	}
	if g.UUID, ret = dev.GetUUID(); ret != nvml.SUCCESS {
		return g, nvmlErr(fmt.Sprintf("GPU %d UUID", i), ret)
	}
	g.Name, _ = dev.GetName()
	if pci, ret := dev.GetPciInfo(); ret == nvml.SUCCESS {
		g.BusID = BusID(pci)
	}
	if mem, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
		g.MemoryBytes = mem.Total
	}
	if major, minor, ret := dev.GetCudaComputeCapability(); ret == nvml.SUCCESS {
		g.ComputeCapability = fmt.Sprintf("%d.%d", major, minor)
	}
	if b, ret := dev.GetBrand(); ret == nvml.SUCCESS {
		g.Brand = brandName(b)
	}
	if cur, _, ret := dev.GetMigMode(); ret == nvml.SUCCESS && cur == nvml.DEVICE_MIG_ENABLE {
		g.MIGEnabled = true
		migs, err := migDevices(dev)
		if err != nil {
			return g, fmt.Errorf("GPU %d: %w", i, err)
		}
		g.MIGDevices = migs
	}
	return g, nil
}

func migDevices(dev nvml.Device) ([]gpu.MIG, error) {
	n, ret := dev.GetMaxMigDeviceCount()
	if ret != nvml.SUCCESS {
		return nil, nvmlErr("MIG device count", ret)
	}
	var migs []gpu.MIG
	for j := 0; j < n; j++ {
		m, ret := dev.GetMigDeviceHandleByIndex(j)
		if ret == nvml.ERROR_NOT_FOUND || ret == nvml.ERROR_INVALID_ARGUMENT {
			continue
		}
		if ret != nvml.SUCCESS {
			return nil, nvmlErr(fmt.Sprintf("MIG device %d", j), ret)
		}
		var mig gpu.MIG
		if mig.UUID, ret = m.GetUUID(); ret != nvml.SUCCESS {
			return nil, nvmlErr("MIG UUID", ret)
		}
		if mig.GIID, ret = m.GetGpuInstanceId(); ret != nvml.SUCCESS {
			return nil, nvmlErr("MIG GPU instance", ret)
		}
		if mig.CIID, ret = m.GetComputeInstanceId(); ret != nvml.SUCCESS {
			return nil, nvmlErr("MIG compute instance", ret)
		}
		if mem, ret := m.GetMemoryInfo(); ret == nvml.SUCCESS {
			mig.MemoryBytes = mem.Total
		}
		if name, ret := m.GetName(); ret == nvml.SUCCESS {
			if _, p, ok := strings.Cut(name, "MIG "); ok {
				mig.Profile = p
			}
		}
		migs = append(migs, mig)
	}
	// Index MIG devices by (GPU instance, compute instance), the order the
	// procfs path uses too, so "0:1" means the same device on both paths.
	sort.Slice(migs, func(a, b int) bool {
		if migs[a].GIID != migs[b].GIID {
			return migs[a].GIID < migs[b].GIID
		}
		return migs[a].CIID < migs[b].CIID
	})
	for k := range migs {
		migs[k].Index = k
	}
	return migs, nil
}

func nvmlErr(what string, ret nvml.Return) error {
	return fmt.Errorf("NVML %s: %s", what, nvml.ErrorString(ret))
}

func cstr(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

// BusID is a device's PCI bus id as the inventory writes it: NVML's
// "00000000:07:00.0" as "0000:07:00.0".
func BusID(pci nvml.PciInfo) string { return normalizeBusID(cstr(pci.BusId[:])) }

// normalizeBusID turns NVML's "00000000:07:00.0" into "0000:07:00.0".
func normalizeBusID(id string) string {
	id = strings.ToLower(id)
	dom, rest, ok := strings.Cut(id, ":")
	if !ok {
		return id
	}
	if d, err := strconv.ParseUint(dom, 16, 32); err == nil {
		return fmt.Sprintf("%04x:%s", d, rest)
	}
	return id
}

var brands = map[nvml.BrandType]string{
	nvml.BRAND_UNKNOWN: "unknown", nvml.BRAND_QUADRO: "quadro", nvml.BRAND_TESLA: "tesla",
	nvml.BRAND_NVS: "nvs", nvml.BRAND_GRID: "grid", nvml.BRAND_GEFORCE: "geforce", nvml.BRAND_TITAN: "titan",
	nvml.BRAND_NVIDIA_VAPPS: "nvidiavapps", nvml.BRAND_NVIDIA_VPC: "nvidiavpc", nvml.BRAND_NVIDIA_VCS: "nvidiavcs",
	nvml.BRAND_NVIDIA_VWS: "nvidiavws", nvml.BRAND_NVIDIA_CLOUD_GAMING: "nvidiacloudgaming",
	nvml.BRAND_QUADRO_RTX: "quadrortx", nvml.BRAND_NVIDIA_RTX: "nvidiartx", nvml.BRAND_NVIDIA: "nvidia",
	nvml.BRAND_GEFORCE_RTX: "geforcertx", nvml.BRAND_TITAN_RTX: "titanrtx",
}

func brandName(b nvml.BrandType) string {
	if s, ok := brands[b]; ok {
		return s
	}
	return "unknown"
}

// Discover is gpu.Discover with NVML for root tried first.
func Discover(root string) (*gpu.Inventory, error) {
	return gpu.Discover(gpu.DiscoverOptions{DriverRoot: root, NVML: ForRoot(root)})
}
