package simroot

import (
	"fmt"

	"github.com/nvbind/nvbind/internal/gpu"
)

// sysfs.go builds the sysfs side of a root: each GPU's PCI device with the
// driver bound to it, and the loaded kernel modules, so driver flavours,
// GPUs nvbind cannot use and hybrid laptops can be simulated.

// Kernel drivers (Options.Kernel).
const (
	KernelOpen        = "open"
	KernelProprietary = "proprietary"
	KernelNouveau     = "nouveau"
)

// PCI facts of the simulated devices.
const (
	nvidiaDeviceID = "0x20b2" // A100-SXM4-80GB
	intelDeviceID  = "0x9a49" // Tiger Lake Iris Xe
	IntelIGPUBus   = "0000:00:02.0"
)

// pciDevice writes one PCI device, with its driver link as the kernel
// makes it (relative, into /sys/bus/pci/drivers) when driver is set.
func (b *builder) pciDevice(bus, vendor, device, class, driver string, bootVGA bool) gpu.PCIGPU {
	dir := "sys/bus/pci/devices/" + bus
	b.write(dir+"/vendor", vendor+"\n", 0o444)
	b.write(dir+"/device", device+"\n", 0o444)
	b.write(dir+"/class", class+"\n", 0o444)
	vga := "0"
	if bootVGA {
		vga = "1"
	}
	b.write(dir+"/boot_vga", vga+"\n", 0o444)
	if driver != "" {
		b.mkdir("sys/bus/pci/drivers/" + driver)
		b.symlink("../../../bus/pci/drivers/"+driver, dir+"/driver")
	}
	return gpu.PCIGPU{Address: bus, VendorID: vendor, DeviceID: device, Driver: driver}
}

// sysfs writes the PCI devices and modules of a root with the NVIDIA
// driver: its GPUs bound to nvidia, VFIOGPUs more bound to vfio-pci, an
// Intel iGPU when Hybrid.
func (b *builder) sysfs(r *Root) {
	nvidiaClass := "0x030200" // 3D controller: a datacenter GPU
	if b.opts.Hybrid {
		nvidiaClass = "0x030000" // a laptop's dGPU is a VGA controller
	}
	for _, g := range r.GPUs {
		r.PCI = append(r.PCI, b.pciDevice(g.BusID, gpu.VendorNVIDIA, nvidiaDeviceID, nvidiaClass, "nvidia", false))
	}
	for i := 0; i < b.opts.VFIOGPUs; i++ {
		bus := fmt.Sprintf("0000:%02x:00.0", 0xe0+i)
		r.PCI = append(r.PCI, b.pciDevice(bus, gpu.VendorNVIDIA, nvidiaDeviceID, nvidiaClass, "vfio-pci", false))
		b.mkdir("sys/module/vfio_pci")
	}
	if b.opts.Hybrid {
		r.PCI = append(r.PCI, b.pciDevice(IntelIGPUBus, gpu.VendorIntel, intelDeviceID, "0x030000", "i915", true))
		b.mkdir("sys/module/i915")
	}
	taint := "OE\n"
	if b.opts.Kernel == KernelProprietary {
		taint = "POE\n"
	}
	for _, m := range []string{"nvidia", "nvidia_uvm", "nvidia_modeset"} {
		b.write("sys/module/"+m+"/version", b.opts.DriverVersion+"\n", 0o444)
		b.write("sys/module/"+m+"/taint", taint, 0o444)
	}
}

// buildNouveau makes a root whose NVIDIA GPUs are driven by nouveau: no
// NVIDIA driver at all (no /proc/driver/nvidia, no nvidia nodes or
// libraries), the nouveau module loaded and the GPUs bound to it, with
// their DRM nodes (nouveau drives the display).
func (b *builder) buildNouveau(r *Root) (*Root, error) {
	b.mergedUsr(r)
	b.write("proc/devices", fmt.Sprintf("Character devices:\n  1 mem\n%3d drm\n", DRMMajor), 0o444)
	for i, g := range r.GPUs {
		r.PCI = append(r.PCI, b.pciDevice(g.BusID, gpu.VendorNVIDIA, nvidiaDeviceID, "0x030000", "nouveau", i == 0 && !b.opts.Hybrid))
		b.mknod(fmt.Sprintf("dev/dri/card%d", i+1), DRMMajor, uint32(i+1), 0o660)
	}
	if b.opts.Hybrid {
		r.PCI = append(r.PCI, b.pciDevice(IntelIGPUBus, gpu.VendorIntel, intelDeviceID, "0x030000", "i915", true))
	}
	b.write("sys/module/nouveau/version", "\n", 0o444)
	b.write("sys/module/nouveau/taint", "\n", 0o444)
	r.GPUs = nil // nothing the NVIDIA driver would list
	if b.err != nil {
		return nil, b.err
	}
	return r, nil
}
