// Package simroot builds a simulated NVIDIA driver root for tests and demos:
// the device nodes at NVIDIA's majors, the /proc/driver/nvidia files, real
// ELF shared objects with the driver's SONAMEs, binaries, firmware, ICD
// files and the persistenced socket, all laid out as a real driver install
// lays them out. Device nodes need root (CAP_MKNOD).
package simroot

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nvbind/nvbind/internal/gpu"
)

// DefaultDriverVersion is the driver version of a root built without one.
const DefaultDriverVersion = "580.95.05"

// Device majors of the simulated host. 195 is fixed by NVIDIA; the others
// are dynamic on a real host and read from proc/devices.
const (
	NvidiaMajor = 195
	UVMMajor    = 510
	CapsMajor   = 236
	DRMMajor    = 226
)

// Options says what to build.
type Options struct {
	// GPUs is the number of GPUs (0 gives a driver without GPUs).
	GPUs int
	// DriverVersion defaults to DefaultDriverVersion.
	DriverVersion string
	// MIG turns MIG mode on for every GPU with two MIG devices each.
	MIG bool
	// Compat32 adds the 32-bit libraries under usr/lib/i386-linux-gnu.
	Compat32 bool
	// LDCache writes etc/ld.so.cache with the host's ldconfig (-r DIR).
	LDCache bool
	// NoDRM leaves out /dev/dri (a headless datacenter host).
	NoDRM bool

	// WSL builds a WSL2 root instead (see wsl.go): /dev/dxg, the
	// /usr/lib/wsl libraries and driver stores, a WSL kernel release.
	// GPUs and the kernel options below are ignored then.
	WSL bool
	// Kernel is the kernel driver: KernelOpen (default), KernelProprietary
	// or KernelNouveau (every NVIDIA GPU bound to nouveau, no NVIDIA driver).
	Kernel string
	// VFIOGPUs are more NVIDIA GPUs, bound to vfio-pci: in sysfs only.
	VFIOGPUs int
	// Hybrid adds an Intel integrated GPU (a PRIME laptop).
	Hybrid bool
	// Model overrides ModelName.
	Model string
	// NoFirmware leaves out the GSP firmware files.
	NoFirmware bool
	// NoOwnVersionLinks leaves out the SONAME and development links of the
	// libraries with a version of their own (libnvidia-egl-gbm.so.1.1.2...),
	// and ldconfig does not make them: some driver packages ship only the
	// versioned files.
	NoOwnVersionLinks bool
}

// Root is a built simulated root.
type Root struct {
	Dir           string
	DriverVersion string
	// GPUs as discovery is expected to see them (index order = minor order).
	GPUs []gpu.GPU
	// Libraries are the driver's versioned library files, root-relative
	// with a leading slash (/usr/lib/x86_64-linux-gnu/libcuda.so.580.95.05).
	Libraries []string
	// PCI are the display-class PCI devices in sys/bus/pci/devices.
	PCI []gpu.PCIGPU
	// WSLStore is the NVIDIA driver store of a WSL2 root, root-relative.
	WSLStore string
}

// Library is one driver library: its file stem, SONAME and version suffix
// ("" = the driver version).
type library struct {
	stem, soname, version string
	subdir                string // e.g. "vdpau"
	compat32              bool   // also shipped as a 32-bit copy
}

// libraries is what a 580-series driver installs (a superset of what nvbind
// injects, as on a real host).
var libraries = []library{
	{stem: "libcuda.so", soname: "libcuda.so.1", compat32: true},
	{stem: "libcudadebugger.so", soname: "libcudadebugger.so.1"},
	{stem: "libnvidia-ml.so", soname: "libnvidia-ml.so.1", compat32: true},
	{stem: "libnvidia-cfg.so", soname: "libnvidia-cfg.so.1"},
	{stem: "libnvidia-ptxjitcompiler.so", soname: "libnvidia-ptxjitcompiler.so.1", compat32: true},
	{stem: "libnvidia-nvvm.so", soname: "libnvidia-nvvm.so.4"},
	{stem: "libnvidia-opencl.so", soname: "libnvidia-opencl.so.1", compat32: true},
	{stem: "libnvidia-gpucomp.so", soname: "libnvidia-gpucomp.so.%v", compat32: true},
	{stem: "libnvidia-allocator.so", soname: "libnvidia-allocator.so.1", compat32: true},
	{stem: "libnvidia-pkcs11-openssl3.so", soname: "libnvidia-pkcs11-openssl3.so.%v"},
	{stem: "libnvcuvid.so", soname: "libnvcuvid.so.1", compat32: true},
	{stem: "libnvidia-encode.so", soname: "libnvidia-encode.so.1", compat32: true},
	{stem: "libnvidia-opticalflow.so", soname: "libnvidia-opticalflow.so.1", compat32: true},
	{stem: "libvdpau_nvidia.so", soname: "libvdpau_nvidia.so.1", subdir: "vdpau", compat32: true},
	{stem: "libGLX_nvidia.so", soname: "libGLX_nvidia.so.0", compat32: true},
	{stem: "libEGL_nvidia.so", soname: "libEGL_nvidia.so.0", compat32: true},
	{stem: "libGLESv2_nvidia.so", soname: "libGLESv2_nvidia.so.2", compat32: true},
	{stem: "libGLESv1_CM_nvidia.so", soname: "libGLESv1_CM_nvidia.so.1", compat32: true},
	{stem: "libnvidia-glcore.so", soname: "libnvidia-glcore.so.%v", compat32: true},
	{stem: "libnvidia-eglcore.so", soname: "libnvidia-eglcore.so.%v", compat32: true},
	{stem: "libnvidia-glsi.so", soname: "libnvidia-glsi.so.%v", compat32: true},
	{stem: "libnvidia-tls.so", soname: "libnvidia-tls.so.%v", compat32: true},
	{stem: "libnvidia-rtcore.so", soname: "libnvidia-rtcore.so.%v"},
	{stem: "libnvidia-glvkspirv.so", soname: "libnvidia-glvkspirv.so.%v", compat32: true},
	{stem: "libnvoptix.so", soname: "libnvoptix.so.1"},
	{stem: "libnvidia-fbc.so", soname: "libnvidia-fbc.so.1", compat32: true},
	{stem: "libnvidia-ngx.so", soname: "libnvidia-ngx.so.1"},
	{stem: "libnvidia-egl-gbm.so", soname: "libnvidia-egl-gbm.so.1", version: "1.1.2"},
	{stem: "libnvidia-egl-wayland.so", soname: "libnvidia-egl-wayland.so.1", version: "1.1.19"},
	{stem: "libnvidia-egl-xcb.so", soname: "libnvidia-egl-xcb.so.1", version: "1.0.1"},
	{stem: "libnvidia-egl-xlib.so", soname: "libnvidia-egl-xlib.so.1", version: "1.0.1"},
}

const (
	lib64Dir = "usr/lib/x86_64-linux-gnu"
	lib32Dir = "usr/lib/i386-linux-gnu"
)

// busIDs of a DGX A100, then made-up ones.
var busIDs = []string{"0000:07:00.0", "0000:0f:00.0", "0000:47:00.0", "0000:4e:00.0", "0000:87:00.0", "0000:90:00.0", "0000:b7:00.0", "0000:bd:00.0"}

// Model facts of the simulated GPUs.
const (
	ModelName         = "NVIDIA A100-SXM4-80GB"
	ComputeCapability = "8.0"
)

// Build creates the simulated driver root in dir (created if missing).
func Build(dir string, opts Options) (*Root, error) {
	if opts.GPUs < 0 {
		return nil, fmt.Errorf("simroot: negative GPU count %d", opts.GPUs)
	}
	if opts.DriverVersion == "" {
		opts.DriverVersion = DefaultDriverVersion
	}
	if strings.ContainsAny(opts.DriverVersion, "/ \n") {
		return nil, fmt.Errorf("simroot: bad driver version %q", opts.DriverVersion)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("simroot: %w", err)
	}
	b := &builder{dir: abs, opts: opts}
	r := &Root{Dir: abs, DriverVersion: opts.DriverVersion}
	if opts.WSL {
		return b.buildWSL(r)
	}
	switch opts.Kernel {
	case "", KernelOpen, KernelProprietary, KernelNouveau:
	default:
		return nil, fmt.Errorf("simroot: unknown kernel driver %q", opts.Kernel)
	}
	for i := 0; i < opts.GPUs; i++ {
		r.GPUs = append(r.GPUs, simGPU(i, opts.MIG, opts.Model))
	}
	if opts.Kernel == KernelNouveau {
		return b.buildNouveau(r)
	}
	steps := []func(*Root){b.mergedUsr, b.devices, b.procfs, b.libraries, b.binaries, b.dataFiles, b.sysfs}
	for _, step := range steps {
		step(r)
		if b.err != nil {
			return nil, b.err
		}
	}
	if err := b.socket("run/nvidia-persistenced/socket"); err != nil {
		return nil, err
	}
	if opts.LDCache {
		if err := b.ldcache(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func simGPU(i int, mig bool, model string) gpu.GPU {
	bus := fmt.Sprintf("0000:%02x:00.0", 0xc0+i)
	if i < len(busIDs) {
		bus = busIDs[i]
	}
	if model == "" {
		model = ModelName
	}
	g := gpu.GPU{
		Index: i, Minor: i, UUID: "GPU-" + fakeUUID(fmt.Sprintf("gpu-%d", i)),
		Name: model, BusID: bus, ComputeCapability: gpu.ArchForModel(model), MIGEnabled: mig,
	}
	if mig {
		// Two MIG devices: GPU instances 1 and 2, compute instance 0 each.
		for m := 0; m < 2; m++ {
			g.MIGDevices = append(g.MIGDevices, gpu.MIG{
				Index: m, GIID: m + 1, CIID: 0,
				UUID: "MIG-" + fakeUUID(fmt.Sprintf("gpu-%d-mig-%d", i, m)),
			})
		}
	}
	return g
}

// fakeUUID is a stable UUID-shaped string derived from seed.
func fakeUUID(seed string) string {
	h := sha256.Sum256([]byte("nvbind-simroot/" + seed))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// MIGMinor is the nvidia-caps minor of a MIG access file, the numbering
// the kernel module publishes in /proc/driver/nvidia-caps/mig-minors.
// ci < 0 means the GPU instance's own access file.
func MIGMinor(gpuMinor, gi, ci int) int {
	m := 3 + gpuMinor*15*9 + gi*9
	if ci >= 0 {
		m += 1 + ci
	}
	return m
}

type builder struct {
	dir  string
	opts Options
	err  error
}

func (b *builder) path(rel string) string { return filepath.Join(b.dir, rel) }

func (b *builder) mkdir(rel string) {
	if b.err == nil {
		if err := os.MkdirAll(b.path(rel), 0o755); err != nil {
			b.err = fmt.Errorf("simroot: %w", err)
		}
	}
}

func (b *builder) write(rel string, data string, perm os.FileMode) {
	if b.err != nil {
		return
	}
	b.mkdir(filepath.Dir(rel))
	if b.err == nil {
		if err := os.WriteFile(b.path(rel), []byte(data), perm); err != nil {
			b.err = fmt.Errorf("simroot: %w", err)
		}
	}
}

func (b *builder) symlink(target, rel string) {
	if b.err != nil {
		return
	}
	b.mkdir(filepath.Dir(rel))
	p := b.path(rel)
	_ = os.Remove(p)
	if err := os.Symlink(target, p); err != nil && b.err == nil {
		b.err = fmt.Errorf("simroot: %w", err)
	}
}

func (b *builder) mknod(rel string, major, minor uint32, perm uint32) {
	if b.err != nil {
		return
	}
	b.mkdir(filepath.Dir(rel))
	p := b.path(rel)
	_ = os.Remove(p)
	if err := unix.Mknod(p, unix.S_IFCHR|perm, int(unix.Mkdev(major, minor))); err != nil {
		if errors.Is(err, unix.EPERM) {
			err = fmt.Errorf("%w (device nodes need root / CAP_MKNOD)", err)
		}
		b.err = fmt.Errorf("simroot: mknod %s: %w", p, err)
		return
	}
	// mknod honours the umask; set the mode the driver gives its nodes.
	if err := os.Chmod(p, os.FileMode(perm)); err != nil {
		b.err = fmt.Errorf("simroot: %w", err)
	}
}

// mergedUsr makes the Debian 12 / Fedora layout: /lib, /bin, /sbin and
// /lib64 are links into /usr, and /var/run is a link to /run.
func (b *builder) mergedUsr(*Root) {
	for _, d := range []string{"usr/lib", "usr/bin", "usr/sbin", "usr/lib64", "run", "var"} {
		b.mkdir(d)
	}
	b.symlink("usr/lib", "lib")
	b.symlink("usr/bin", "bin")
	b.symlink("usr/sbin", "sbin")
	b.symlink("usr/lib64", "lib64")
	b.symlink("../run", "var/run")
}

func (b *builder) devices(r *Root) {
	for _, g := range r.GPUs {
		b.mknod(fmt.Sprintf("dev/nvidia%d", g.Minor), NvidiaMajor, uint32(g.Minor), 0o666)
	}
	b.mknod("dev/nvidiactl", NvidiaMajor, 255, 0o666)
	b.mknod("dev/nvidia-modeset", NvidiaMajor, 254, 0o666)
	b.mknod("dev/nvidia-uvm", UVMMajor, 0, 0o666)
	b.mknod("dev/nvidia-uvm-tools", UVMMajor, 1, 0o666)
	if b.opts.MIG {
		b.mknod("dev/nvidia-caps/nvidia-cap1", CapsMajor, 1, 0o400)
		b.mknod("dev/nvidia-caps/nvidia-cap2", CapsMajor, 2, 0o444)
		for _, g := range r.GPUs {
			for _, m := range g.MIGDevices {
				gi, ci := MIGMinor(g.Minor, m.GIID, -1), MIGMinor(g.Minor, m.GIID, m.CIID)
				b.mknod(fmt.Sprintf("dev/nvidia-caps/nvidia-cap%d", gi), CapsMajor, uint32(gi), 0o444)
				b.mknod(fmt.Sprintf("dev/nvidia-caps/nvidia-cap%d", ci), CapsMajor, uint32(ci), 0o444)
			}
		}
	}
	if !b.opts.NoDRM {
		for _, g := range r.GPUs {
			card, render := g.Index+1, 128+g.Index
			b.mknod(fmt.Sprintf("dev/dri/card%d", card), DRMMajor, uint32(card), 0o660)
			b.mknod(fmt.Sprintf("dev/dri/renderD%d", render), DRMMajor, uint32(render), 0o666)
			b.symlink(fmt.Sprintf("../card%d", card), fmt.Sprintf("dev/dri/by-path/pci-%s-card", g.BusID))
			b.symlink(fmt.Sprintf("../renderD%d", render), fmt.Sprintf("dev/dri/by-path/pci-%s-render", g.BusID))
		}
	}
}

func (b *builder) procfs(r *Root) {
	v := b.opts.DriverVersion
	nvrm := "NVIDIA UNIX Open Kernel Module for x86_64  %s  Release Build  (dvs-builder@U22-I3-AE18-23-3)  Tue Sep 23 09:39:29 UTC 2025"
	if b.opts.Kernel == KernelProprietary {
		nvrm = "NVIDIA UNIX x86_64 Kernel Module  %s  Tue Sep 23 09:58:26 UTC 2025"
	}
	b.write("proc/driver/nvidia/version", fmt.Sprintf("NVRM version: "+nvrm+"\n"+
		"GCC version:  gcc version 12.2.0 (Debian 12.2.0-14+deb12u1) \n", v), 0o444)
	b.write("proc/devices", "Character devices:\n  1 mem\n  4 /dev/vc/0\n  4 tty\n  5 /dev/tty\n 10 misc\n"+
		fmt.Sprintf("%3d nvidia-frontend\n%3d drm\n%3d nvidia-caps\n%3d nvidia-uvm\n", NvidiaMajor, DRMMajor, CapsMajor, UVMMajor)+
		"\nBlock devices:\n  8 sd\n259 blkext\n", 0o444)
	for _, g := range r.GPUs {
		b.write(fmt.Sprintf("proc/driver/nvidia/gpus/%s/information", g.BusID), fmt.Sprintf(
			"Model: \t\t %s\nIRQ:   \t\t %d\nGPU UUID: \t %s\nVideo BIOS: \t 92.00.36.00.10\nBus Type: \t PCIe\n"+
				"DMA Size: \t 47 bits\nDMA Mask: \t 0x7fffffffffff\nBus Location: \t %s\nDevice Minor: \t %d\n"+
				"GPU Firmware: \t %s\nGPU Excluded:\t No\n", g.Name, 40+g.Index, g.UUID, g.BusID, g.Minor, v), 0o444)
	}
	if b.opts.MIG {
		var minors strings.Builder
		minors.WriteString("config 1\nmonitor 2\n")
		for _, g := range r.GPUs {
			for gi := 0; gi < 15; gi++ {
				fmt.Fprintf(&minors, "gpu%d/gi%d/access %d\n", g.Minor, gi, MIGMinor(g.Minor, gi, -1))
				for ci := 0; ci < 8; ci++ {
					fmt.Fprintf(&minors, "gpu%d/gi%d/ci%d/access %d\n", g.Minor, gi, ci, MIGMinor(g.Minor, gi, ci))
				}
			}
		}
		b.write("proc/driver/nvidia-caps/mig-minors", minors.String(), 0o444)
		for _, g := range r.GPUs {
			for _, m := range g.MIGDevices {
				base := fmt.Sprintf("proc/driver/nvidia/capabilities/gpu%d/mig/gi%d", g.Minor, m.GIID)
				b.write(base+"/access", fmt.Sprintf("DeviceFileMinor: %d\nDeviceFileMode: 292\nDeviceFileModify: 1\n", MIGMinor(g.Minor, m.GIID, -1)), 0o444)
				b.write(fmt.Sprintf("%s/ci%d/access", base, m.CIID), fmt.Sprintf("DeviceFileMinor: %d\nDeviceFileMode: 292\nDeviceFileModify: 1\n", MIGMinor(g.Minor, m.GIID, m.CIID)), 0o444)
			}
		}
	}
}

func (b *builder) libraries(r *Root) {
	dv := b.opts.DriverVersion
	for _, l := range libraries {
		ver := l.version
		if ver == "" {
			ver = dv
		}
		soname := strings.ReplaceAll(l.soname, "%v", dv)
		file := l.stem + "." + ver
		dirs := []string{lib64Dir}
		if b.opts.Compat32 && l.compat32 {
			dirs = append(dirs, lib32Dir)
		}
		for _, d := range dirs {
			if l.subdir != "" {
				d = filepath.Join(d, l.subdir)
			}
			b.writeBytes(filepath.Join(d, file), sharedObject(soname, d != lib32Dir && !strings.HasPrefix(d, lib32Dir+"/")))
			if l.version != "" && b.opts.NoOwnVersionLinks {
				if d == lib64Dir {
					r.Libraries = append(r.Libraries, "/"+filepath.Join(d, file))
				}
				continue
			}
			if soname != file {
				b.symlink(file, filepath.Join(d, soname))
			}
			if d == lib64Dir || d == lib32Dir {
				// The development link the .run installer makes.
				b.symlink(soname, filepath.Join(d, l.stem))
			}
			if d == lib64Dir || strings.HasPrefix(d, lib64Dir+"/") {
				r.Libraries = append(r.Libraries, "/"+filepath.Join(d, file))
			}
		}
	}
	b.write("etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n", 0o644)
	b.write("etc/ld.so.conf.d/x86_64-linux-gnu.conf", "/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n", 0o644)
	if b.opts.Compat32 {
		b.write("etc/ld.so.conf.d/i386-linux-gnu.conf", "/lib/i386-linux-gnu\n/usr/lib/i386-linux-gnu\n", 0o644)
	}
}

func (b *builder) writeBytes(rel string, data []byte) {
	b.write(rel, string(data), 0o755)
}

func (b *builder) binaries(r *Root) {
	b.write("usr/bin/nvidia-smi", nvidiaSMI(r), 0o755)
	for _, name := range []string{"nvidia-debugdump", "nvidia-persistenced", "nvidia-cuda-mps-control", "nvidia-cuda-mps-server"} {
		b.write("usr/bin/"+name, fmt.Sprintf("#!/bin/sh\necho '%s (simulated) %s'\n", name, b.opts.DriverVersion), 0o755)
	}
}

// nvidiaSMI is a shell script printing a table shaped like nvidia-smi's.
// Like the real one it shows only the GPUs whose device node it can see,
// numbered from 0, so in a container it lists the GPUs the container got.
func nvidiaSMI(r *Root) string {
	var s strings.Builder
	s.WriteString("#!/bin/sh\n# simulated nvidia-smi (nvbind simroot)\n")
	s.WriteString("[ -e /dev/nvidiactl ] || { echo 'NVIDIA-SMI has failed because it couldn'\\''t communicate with the NVIDIA driver.'; exit 9; }\n")
	s.WriteString("i=0\nif [ \"$1\" = \"-L\" ]; then\n")
	for _, g := range r.GPUs {
		fmt.Fprintf(&s, "  [ -e /dev/nvidia%d ] && { echo \"GPU $i: %s (UUID: %s)\"; i=$((i+1)); }\n", g.Minor, g.Name, g.UUID)
	}
	s.WriteString("  exit 0\nfi\n")
	line := "+-----------------------------------------------------------------------------------------+"
	fmt.Fprintf(&s, "echo '%s'\n", line)
	fmt.Fprintf(&s, "echo '| NVIDIA-SMI %-18s Driver Version: %-18s CUDA Version: %-9s|'\n", r.DriverVersion, r.DriverVersion, gpu.CUDAVersionForDriver(r.DriverVersion))
	s.WriteString("echo '|-----------------------------------------+------------------------+----------------------+'\n")
	s.WriteString("echo '| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |'\n")
	s.WriteString("echo '|=========================================+========================+======================|'\n")
	for _, g := range r.GPUs {
		fmt.Fprintf(&s, "[ -e /dev/nvidia%d ] && { printf '| %%3d  %-26s     On | %-16s   Off |                    0 |\\n' $i; i=$((i+1)); }\n", g.Minor, g.Name, "0000"+strings.ToUpper(g.BusID))
	}
	fmt.Fprintf(&s, "echo '%s'\n", line)
	return s.String()
}

func (b *builder) dataFiles(r *Root) {
	v := b.opts.DriverVersion
	for _, fw := range []string{"gsp_ga10x.bin", "gsp_tu10x.bin"} {
		if !b.opts.NoFirmware {
			b.write(filepath.Join("lib/firmware/nvidia", v, fw), "simulated GSP firmware "+v+"\n", 0o444)
		}
	}
	icd := func(lib string) string {
		return fmt.Sprintf("{\n    \"file_format_version\" : \"1.0.0\",\n    \"ICD\" : {\n        \"library_path\" : \"%s\"\n    }\n}\n", lib)
	}
	b.write("usr/share/vulkan/icd.d/nvidia_icd.json", "{\n    \"file_format_version\" : \"1.0.1\",\n    \"ICD\": {\n        \"library_path\": \"libGLX_nvidia.so.0\",\n        \"api_version\" : \"1.4.312\"\n    }\n}\n", 0o644)
	b.write("usr/share/vulkan/implicit_layer.d/nvidia_layers.json", "{\n    \"file_format_version\" : \"1.0.1\",\n    \"layer\": {\n        \"name\": \"VK_LAYER_NV_optimus\",\n        \"type\": \"INSTANCE\",\n        \"library_path\": \"libGLX_nvidia.so.0\",\n        \"api_version\" : \"1.4.312\",\n        \"implementation_version\" : \"1\",\n        \"description\" : \"NVIDIA Optimus layer\"\n    }\n}\n", 0o644)
	b.write("usr/share/glvnd/egl_vendor.d/10_nvidia.json", icd("libEGL_nvidia.so.0"), 0o644)
	b.write("usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json", icd("libnvidia-egl-gbm.so.1"), 0o644)
	b.write("usr/share/egl/egl_external_platform.d/10_nvidia_wayland.json", icd("libnvidia-egl-wayland.so.1"), 0o644)
	b.write("usr/share/egl/egl_external_platform.d/20_nvidia_xcb.json", icd("libnvidia-egl-xcb.so.1"), 0o644)
	b.write("usr/share/egl/egl_external_platform.d/20_nvidia_xlib.json", icd("libnvidia-egl-xlib.so.1"), 0o644)
	b.write(filepath.Join("usr/share/nvidia", "nvidia-application-profiles-"+v+"-rc"), "{\"rules\": [], \"profiles\": []}\n", 0o644)
	b.writeBytes("usr/lib/xorg/modules/drivers/nvidia_drv.so", sharedObject("nvidia_drv.so", true))
	b.writeBytes("usr/lib/xorg/modules/extensions/libglxserver_nvidia.so."+v, sharedObject("libglxserver_nvidia.so."+v, true))
	b.symlink("libglxserver_nvidia.so."+v, "usr/lib/xorg/modules/extensions/libglxserver_nvidia.so")
}

// socket leaves a bound unix socket at rel, as nvidia-persistenced does. It
// binds through /proc/self/fd so long test paths do not hit the 108-byte
// sun_path limit.
func (b *builder) socket(rel string) error {
	b.mkdir(filepath.Dir(rel))
	if b.err != nil {
		return b.err
	}
	p := b.path(rel)
	_ = os.Remove(p)
	dirfd, err := unix.Open(filepath.Dir(p), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("simroot: socket %s: %w", p, err)
	}
	defer unix.Close(dirfd)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("simroot: socket %s: %w", p, err)
	}
	defer unix.Close(fd)
	addr := &unix.SockaddrUnix{Name: fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, filepath.Base(p))}
	if err := unix.Bind(fd, addr); err != nil {
		return fmt.Errorf("simroot: bind %s: %w", p, err)
	}
	return nil
}

// ldcache builds etc/ld.so.cache with the host's ldconfig, as the driver
// installer's ldconfig run does on a real host.
func (b *builder) ldcache() error {
	ldconfig, err := exec.LookPath("ldconfig")
	if err != nil {
		if _, serr := os.Stat("/sbin/ldconfig"); serr != nil {
			return fmt.Errorf("simroot: ld.so.cache: ldconfig not found: %w", err)
		}
		ldconfig = "/sbin/ldconfig"
	}
	args := []string{"-r", b.dir}
	if b.opts.NoOwnVersionLinks {
		args = append(args, "-X") // make no links
	}
	out, err := exec.Command(ldconfig, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("simroot: ldconfig -r %s: %w: %s", b.dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}
