package gpu

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// flavour.go tells which kernel driver drives the machine's GPUs: NVIDIA's
// open kernel modules, NVIDIA's proprietary ones or nouveau (which has no
// CUDA), and lists every display-class PCI device with the driver bound to
// it, so NVIDIA GPUs nvbind cannot use (bound to nouveau or vfio-pci) and
// integrated GPUs beside NVIDIA ones (hybrid laptops) are named. Only
// sysfs and procfs under the driver root are read.

// Flavour is the kind of kernel driver serving NVIDIA GPUs.
type Flavour string

const (
	FlavourOpen        Flavour = "open"
	FlavourProprietary Flavour = "proprietary"
	FlavourNouveau     Flavour = "nouveau"
	FlavourNone        Flavour = "none"
)

// PCI vendor IDs.
const (
	VendorNVIDIA = "0x10de"
	VendorIntel  = "0x8086"
	VendorAMD    = "0x1002"
)

// HostGPUs is what the kernel says about the machine's GPUs.
type HostGPUs struct {
	Flavour Flavour `json:"flavour"`
	// FlavourDetail says how the flavour was told ("NVRM version: ... Open
	// Kernel Module", "nouveau module loaded").
	FlavourDetail string `json:"flavourDetail,omitempty"`
	// PCI lists the display-class PCI devices in bus order.
	PCI []PCIGPU `json:"pciGpus,omitempty"`
}

// PCIGPU is one display-class PCI device.
type PCIGPU struct {
	Address  string `json:"address"`
	VendorID string `json:"vendorId"`
	DeviceID string `json:"deviceId"`
	// Vendor in words: NVIDIA, Intel, AMD or the vendor ID.
	Vendor string `json:"vendor"`
	// Driver is the kernel driver bound to it ("" when none).
	Driver string `json:"driver"`
	// Integrated: a GPU other than NVIDIA's that drives the built-in
	// display (Intel, or the boot VGA device), as on hybrid laptops.
	Integrated bool `json:"integrated,omitempty"`
	// Usable: an NVIDIA GPU bound to the NVIDIA driver (meaningless for
	// other vendors).
	Usable bool `json:"usable,omitempty"`
	// Problem and Fix say why an NVIDIA GPU is not usable for containers.
	Problem string `json:"problem,omitempty"`
	Fix     string `json:"fix,omitempty"`
}

// IsNVIDIA reports whether the device is an NVIDIA GPU.
func (p PCIGPU) IsNVIDIA() bool { return p.VendorID == VendorNVIDIA }

// String names the device: "0000:01:00.0 (NVIDIA 10de:2684, driver nvidia)".
func (p PCIGPU) String() string {
	drv := "no driver"
	if p.Driver != "" {
		drv = "driver " + p.Driver
	}
	return fmt.Sprintf("%s (%s %s:%s, %s)", p.Address, p.Vendor,
		strings.TrimPrefix(p.VendorID, "0x"), strings.TrimPrefix(p.DeviceID, "0x"), drv)
}

// Unusable lists the NVIDIA GPUs not bound to the NVIDIA driver.
func (h *HostGPUs) Unusable() []PCIGPU {
	var out []PCIGPU
	for _, p := range h.PCI {
		if p.IsNVIDIA() && !p.Usable {
			out = append(out, p)
		}
	}
	return out
}

// NVIDIA lists the NVIDIA GPUs, usable or not.
func (h *HostGPUs) NVIDIA() []PCIGPU {
	var out []PCIGPU
	for _, p := range h.PCI {
		if p.IsNVIDIA() {
			out = append(out, p)
		}
	}
	return out
}

// Integrated lists the integrated GPUs.
func (h *HostGPUs) Integrated() []PCIGPU {
	var out []PCIGPU
	for _, p := range h.PCI {
		if p.Integrated {
			out = append(out, p)
		}
	}
	return out
}

// Hybrid reports an integrated GPU beside an NVIDIA one (PRIME).
func (h *HostGPUs) Hybrid() bool {
	return len(h.Integrated()) > 0 && len(h.NVIDIA()) > 0
}

// SysRoot is where sysfs is read for root: the root's own sys when it has
// one (a simulated root), else fallback ("" = the host's /).
func SysRoot(root, fallback string) string {
	if d := hostDir(cleanRoot(root), "sys"); d != "/" {
		return d
	}
	if fallback == "" {
		return "/"
	}
	return fallback
}

// ReadHostGPUs reads the driver flavour and the display-class PCI devices.
// sys is where sysfs is read ("" = SysRoot(root, "")); procfs is read as
// ReadDriverVersion reads it.
func ReadHostGPUs(root, sys string) *HostGPUs {
	root = cleanRoot(root)
	if sys == "" {
		sys = SysRoot(root, "")
	}
	h := &HostGPUs{PCI: readPCIGPUs(filepath.Join(sys, "sys/bus/pci/devices"))}
	h.Flavour, h.FlavourDetail = readFlavour(root, sys, h.PCI)
	return h
}

// readFlavour decides the flavour: the NVRM version line names the open
// modules; without it, a loaded nvidia module's taint flags do (P: a
// proprietary module); else nouveau when its module is loaded or a GPU is
// bound to it.
func readFlavour(root, sys string, pci []PCIGPU) (Flavour, string) {
	if data, err := os.ReadFile(filepath.Join(procRoot(root), versionFile)); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.HasPrefix(line, "NVRM version:") {
				continue
			}
			if strings.Contains(line, "Open Kernel Module") {
				return FlavourOpen, "/" + versionFile + " names the Open Kernel Module"
			}
			return FlavourProprietary, "/" + versionFile + " names the proprietary Kernel Module"
		}
	}
	if taint, err := os.ReadFile(filepath.Join(sys, "sys/module/nvidia/taint")); err == nil {
		if strings.Contains(string(taint), "P") {
			return FlavourProprietary, "nvidia module taint P (proprietary)"
		}
		return FlavourOpen, "nvidia module without taint P (open)"
	}
	if _, err := os.Stat(filepath.Join(sys, "sys/module/nouveau")); err == nil {
		return FlavourNouveau, "nouveau module loaded"
	}
	for _, p := range pci {
		if p.IsNVIDIA() && p.Driver == "nouveau" {
			return FlavourNouveau, p.Address + " bound to nouveau"
		}
	}
	return FlavourNone, ""
}

// readPCIGPUs lists the display-class (0x03xxxx) devices under dir.
func readPCIGPUs(dir string) []PCIGPU {
	ents, _ := os.ReadDir(dir)
	read := func(dev, name string) string {
		data, _ := os.ReadFile(filepath.Join(dir, dev, name))
		return strings.ToLower(strings.TrimSpace(string(data)))
	}
	var out []PCIGPU
	for _, e := range ents {
		class := read(e.Name(), "class")
		if !strings.HasPrefix(class, "0x03") {
			continue
		}
		p := PCIGPU{Address: e.Name(), VendorID: read(e.Name(), "vendor"), DeviceID: read(e.Name(), "device")}
		if target, err := os.Readlink(filepath.Join(dir, e.Name(), "driver")); err == nil {
			p.Driver = filepath.Base(target)
		}
		switch p.VendorID {
		case VendorNVIDIA:
			p.Vendor = "NVIDIA"
		case VendorIntel:
			p.Vendor = "Intel"
		case VendorAMD:
			p.Vendor = "AMD"
		default:
			p.Vendor = "vendor " + strings.TrimPrefix(p.VendorID, "0x")
		}
		if p.IsNVIDIA() {
			p.Usable, p.Problem, p.Fix = nvidiaBinding(p)
		} else {
			// Intel GPUs on NVIDIA laptops are the CPU's; an AMD one is
			// integrated when it is the boot display.
			p.Integrated = p.VendorID == VendorIntel || read(e.Name(), "boot_vga") == "1"
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// nvidiaBinding says whether an NVIDIA GPU is usable for containers given
// the driver bound to it, and if not why and what to do.
func nvidiaBinding(p PCIGPU) (bool, string, string) {
	a := p.Address
	switch p.Driver {
	case "nvidia":
		return true, "", ""
	case "nouveau":
		return false, "bound to nouveau, the open-source driver without CUDA",
			"install the NVIDIA driver (open kernel modules on Turing and newer), blacklist nouveau (echo blacklist nouveau > /etc/modprobe.d/blacklist-nouveau.conf; update-initramfs -u or dracut -f) and reboot"
	case "vfio-pci":
		return false, "bound to vfio-pci (reserved for a virtual machine)",
			fmt.Sprintf("to use it in containers: echo %s > /sys/bus/pci/drivers/vfio-pci/unbind && echo %s > /sys/bus/pci/drivers/nvidia/bind, and remove it from vfio-pci.ids= / driverctl overrides", a, a)
	case "":
		return false, "bound to no driver",
			"install the NVIDIA driver and load it (modprobe nvidia)"
	}
	return false, "bound to " + p.Driver + ", not the NVIDIA driver",
		fmt.Sprintf("echo %s > /sys/bus/pci/drivers/%s/unbind && echo %s > /sys/bus/pci/drivers/nvidia/bind", a, p.Driver, a)
}

// ExplainMissing says why GPUs no spec serves (names without kind, e.g.
// "1", "all") cannot be served, when the kernel knows: on WSL2 single GPUs
// beyond 0 cannot be isolated; elsewhere an NVIDIA GPU may be bound to
// nouveau or vfio-pci. nil when there is nothing to add (the caller then
// reports an unknown device). It reads sysfs, so the runtime calls it only
// for a request it cannot resolve.
func ExplainMissing(root string, names []string) error {
	if w := DetectWSL(root); w != nil {
		for _, n := range names {
			if w.Problem != "" {
				return fmt.Errorf("GPU %s: %s", n, w.Problem)
			}
			if n != DeviceAll && n != DeviceZero && n != DeviceDriver && !strings.HasPrefix(n, CapabilityDevicePrefix) {
				return fmt.Errorf("GPU %s: %w", n, ErrWSLSingleGPU)
			}
		}
		return nil
	}
	h := ReadHostGPUs(root, "")
	bad := h.Unusable()
	if len(bad) == 0 {
		return nil
	}
	usable := len(h.NVIDIA()) - len(bad)
	for _, n := range names {
		if n == DeviceDriver || strings.HasPrefix(n, CapabilityDevicePrefix) {
			continue
		}
		if i, err := strconv.Atoi(n); err == nil && i < usable {
			continue // another reason: not ours to explain
		}
		var why []string
		for _, p := range bad {
			why = append(why, fmt.Sprintf("%s is %s (fix: %s)", p, p.Problem, p.Fix))
		}
		served := "no GPU"
		if usable > 0 {
			served = fmt.Sprintf("%d GPU(s), indices 0-%d", usable, usable-1)
		}
		what := "is not usable for containers"
		if _, err := strconv.Atoi(n); err != nil {
			what = "is not a GPU the NVIDIA driver serves; NVIDIA GPUs not usable for containers"
		}
		return fmt.Errorf("GPU %s %s: %s; the NVIDIA driver serves %s",
			n, what, strings.Join(why, "; "), served)
	}
	return nil
}
