package engines

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nvbind/nvbind/internal/gpu"
)

// doctor_workstation.go holds the checks for workstations: WSL2, the
// kernel driver's flavour, NVIDIA GPUs bound to another driver, GSP
// firmware for the open modules and hybrid (PRIME) laptops.

const wslFix = "install the current NVIDIA driver on Windows (it brings WSL2 GPU support), then run `wsl --update` and `wsl --shutdown` from Windows"

// wslDriver replaces the driver check on WSL2.
func (d *doctor) wslDriver() {
	w := d.wsl
	if w.Problem != "" {
		d.add("driver", Fail, wslFix, "%s", w.Problem)
		return
	}
	inv, err := gpu.Discover(gpu.DiscoverOptions{DriverRoot: d.opts.DriverRoot, NVML: d.opts.NVML})
	if err != nil {
		d.add("driver", Fail, wslFix, "WSL2 GPU discovery failed: %v", err)
		return
	}
	d.version, d.inv = inv.DriverVersion, inv
	what := "GPUs unknown without NVML"
	if len(inv.GPUs) > 0 {
		what = describeGPUs(inv)
	}
	d.add("driver", Pass, "", "WSL2 (kernel %s): NVIDIA driver store %s, libraries in %s, %s; containers get every GPU through %s (WSL2 cannot isolate single GPUs)",
		w.KernelRelease, filepath.Base(w.DriverStore), gpu.WSLLibDir, what, gpu.WSLDevice)
}

// wslDev is where a device node is looked up on WSL2: in the driver root
// when it has its own /dev/dxg (a simulated root), else on the host.
func (d *doctor) wslDev(n string) string {
	if _, err := os.Stat(d.root(gpu.WSLDevice)); err == nil {
		return d.root(n)
	}
	return n
}

// wslDeviceNode checks /dev/dxg is a character device.
func (d *doctor) wslDeviceNode() {
	var st unix.Stat_t
	switch err := unix.Stat(d.dev(gpu.WSLDevice), &st); {
	case err != nil:
		d.add("device-nodes", Fail, wslFix, "%s: %v", gpu.WSLDevice, err)
	case st.Mode&unix.S_IFMT != unix.S_IFCHR:
		d.add("device-nodes", Fail, wslFix, "%s is not a character device", gpu.WSLDevice)
	default:
		d.add("device-nodes", Pass, "", "%s present (%d:%d)", gpu.WSLDevice, unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	}
}

// wslNVML reports NVML on WSL2 when it did not load (or was not tried).
func (d *doctor) wslNVML() {
	const effect = "GPU names and memory are unknown and the ollama profile's fit check is skipped"
	if d.opts.NVML == nil {
		d.add("nvml", Skip, "", "NVML not tried (--no-nvml or a build without cgo): %s", effect)
		return
	}
	d.add("nvml", Warn, "check that nvidia-smi works in WSL2 ("+gpu.WSLLibDir+"/libnvidia-ml.so.1); update the NVIDIA driver on Windows",
		"%s: %s", d.inv.Note, effect)
}

// workstation runs the flavour, binding, firmware and hybrid checks.
func (d *doctor) workstation() {
	h := gpu.ReadHostGPUs(d.opts.DriverRoot, gpu.SysRoot(d.opts.DriverRoot, d.opts.SysRoot))
	d.flavour(h)
	d.binding(h)
	d.gspFirmware(h)
	d.hybrid(h)
}

const nouveauFix = "install the NVIDIA driver (open kernel modules on Turing and newer), blacklist nouveau (echo blacklist nouveau > /etc/modprobe.d/blacklist-nouveau.conf; update-initramfs -u or dracut -f) and reboot"

func (d *doctor) flavour(h *gpu.HostGPUs) {
	const name = "driver-flavour"
	switch h.Flavour {
	case gpu.FlavourOpen:
		d.add(name, Pass, "", "NVIDIA open kernel modules (%s)", h.FlavourDetail)
	case gpu.FlavourProprietary:
		d.add(name, Pass, "", "NVIDIA proprietary kernel modules (%s); GSP firmware is optional with them", h.FlavourDetail)
	case gpu.FlavourNouveau:
		d.add(name, Fail, nouveauFix, "nouveau drives the NVIDIA GPUs (%s): it has no CUDA, so nvbind cannot give them to containers", h.FlavourDetail)
	default:
		d.add(name, Skip, "", "no NVIDIA, nouveau or other kernel driver for NVIDIA GPUs loaded")
	}
}

// binding lists the NVIDIA GPUs not bound to the NVIDIA driver.
func (d *doctor) binding(h *gpu.HostGPUs) {
	const name = "gpu-binding"
	nv := h.NVIDIA()
	if len(nv) == 0 {
		d.add(name, Skip, "", "no NVIDIA GPU in sysfs")
		return
	}
	bad := h.Unusable()
	for _, p := range bad {
		status := Warn
		if len(bad) == len(nv) {
			status = Fail // no GPU left for containers
		}
		d.add(name, status, p.Fix, "%s is %s: not usable for containers", p, p.Problem)
	}
	if len(bad) == 0 {
		d.add(name, Pass, "", "%d NVIDIA GPU(s) bound to the nvidia driver", len(nv))
	}
}

// gspFirmware checks, with the open modules (which need it), that the GSP
// firmware the CDI spec mounts exists for the loaded driver version.
func (d *doctor) gspFirmware(h *gpu.HostGPUs) {
	const name = "gsp-firmware"
	if h.Flavour != gpu.FlavourOpen || d.version == "" {
		d.add(name, Skip, "", "only the NVIDIA open kernel modules need GSP firmware")
		return
	}
	files, err := gpu.FindDriverFiles(d.opts.DriverRoot, d.version)
	if err != nil {
		d.add(name, Fail, "check the driver installation", "cannot look for GSP firmware: %v", err)
		return
	}
	var fw []string
	for _, f := range files.Set(gpu.CapUtility).Files {
		if strings.Contains(f, "/firmware/nvidia/"+d.version+"/") {
			fw = append(fw, filepath.Base(f))
		}
	}
	if len(fw) == 0 {
		d.add(name, Fail, "reinstall the driver's firmware (Debian/Ubuntu: the firmware-nvidia-gsp / nvidia-firmware-<branch> package; .run installer: run it again)",
			"the open kernel modules %s need GSP firmware, but /lib/firmware/nvidia/%s/ has no gsp_*.bin: GPUs fail to initialize and containers get no firmware", d.version, d.version)
		return
	}
	d.add(name, Pass, "", "GSP firmware for %s present and mounted by the spec: %s", d.version, strings.Join(fw, ", "))
}

// hybrid reports a PRIME laptop: an integrated GPU beside an NVIDIA one.
func (d *doctor) hybrid(h *gpu.HostGPUs) {
	const name = "hybrid-graphics"
	if !h.Hybrid() {
		d.add(name, Skip, "", "no integrated GPU beside an NVIDIA one")
		return
	}
	var igpu, dgpu []string
	for _, p := range h.Integrated() {
		igpu = append(igpu, p.String())
	}
	for _, p := range h.NVIDIA() {
		if p.Usable || len(h.Unusable()) == len(h.NVIDIA()) {
			dgpu = append(dgpu, p.String())
		}
	}
	d.add(name, Pass, "",
		"%s", fmt.Sprintf("PRIME laptop: integrated %s drives the display, NVIDIA %s renders on request: graphical containers need the gaming profile with prime=true (annotations nvbind.io/profile=gaming, nvbind.io/profile.prime=true) for render offload",
			strings.Join(igpu, ", "), strings.Join(dgpu, ", ")))
}
