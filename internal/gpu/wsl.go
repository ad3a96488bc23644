package gpu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	specs "tags.cncf.io/container-device-interface/specs-go"
)

// wsl.go knows WSL2's GPU layout. Windows shares its GPUs with the WSL2
// VM through one paravirtual device, /dev/dxg; the user-space driver comes
// from Windows: loader stubs and nvidia-smi in /usr/lib/wsl/lib, the real
// libraries in a driver store folder /usr/lib/wsl/drivers/<name>/. There is
// no /proc/driver/nvidia and no per-GPU device node, so a container gets
// every GPU or none. Everything is read under the driver root, without
// cgo or NVML, so the runtime can use it on its hot path.

// WSL2 paths, as seen in the WSL2 VM and in containers.
const (
	WSLDevice     = "/dev/dxg"
	WSLLibDir     = "/usr/lib/wsl/lib"
	WSLDriversDir = "/usr/lib/wsl/drivers"
	// wslStoreMarker is the file that marks the NVIDIA driver store among
	// the stores of all the machine's GPU drivers.
	wslStoreMarker = "libcuda.so.1.1"
	// wslVersionPrefix starts the driver identity of a WSL2 driver.
	wslVersionPrefix = "wsl-"
)

// ErrWSLSingleGPU explains why WSL2 serves only "all" (and "0").
var ErrWSLSingleGPU = errors.New("WSL2 shares the host's GPUs with containers through one device, /dev/dxg, and cannot give a container single GPUs: ask for NVIDIA_VISIBLE_DEVICES=all (or 0), and select GPUs inside the container with CUDA_VISIBLE_DEVICES")

// WSL describes a WSL2 GPU setup.
type WSL struct {
	// KernelRelease is the kernel's release string
	// ("5.15.167.4-microsoft-standard-WSL2").
	KernelRelease string `json:"kernelRelease"`
	// Device is /dev/dxg's path as the driver root holds it ("" when missing).
	Device string `json:"device,omitempty"`
	// DriverStore is the NVIDIA driver store, a path in the root
	// (/usr/lib/wsl/drivers/nv_dispi.inf_amd64_...); "" when none.
	DriverStore string `json:"driverStore,omitempty"`
	// Stores are every driver store folder found (other GPU vendors' too).
	Stores []string `json:"stores,omitempty"`
	// DriverVersion is what NVML reports, when it loads.
	DriverVersion string `json:"driverVersion,omitempty"`
	// Problem says why GPUs cannot be used here ("" when they can).
	Problem string `json:"problem,omitempty"`
}

// Identity is the driver identity specs record on WSL2: the driver store's
// folder name, which changes with every Windows driver install, so a spec
// made for an older driver is seen as stale.
func (w *WSL) Identity() string {
	if w.DriverStore == "" {
		return ""
	}
	return wslVersionPrefix + filepath.Base(w.DriverStore)
}

// IsWSLIdentity reports whether a recorded driver version is a WSL2
// driver identity.
func IsWSLIdentity(v string) bool { return strings.HasPrefix(v, wslVersionPrefix) }

// hostDir is where a top-level folder (proc, dev, sys) is read for root: the
// root's own when it has one (a simulated root), else the host's (a driver
// container root such as /run/nvidia/driver has none).
func hostDir(root, dir string) string {
	if root == "" || root == "/" {
		return "/"
	}
	if fi, err := os.Stat(filepath.Join(root, dir)); err == nil && fi.IsDir() {
		return root
	}
	return "/"
}

// isWSLKernel reports whether a kernel release string is WSL's
// (Microsoft's kernels carry "microsoft" and, for WSL2, "WSL2").
func isWSLKernel(release string) bool {
	r := strings.ToLower(release)
	return strings.Contains(r, "microsoft") || strings.Contains(r, "wsl")
}

// DetectWSL returns the WSL2 GPU setup under root, or nil when root is not
// a WSL2 system (neither a WSL kernel release nor /dev/dxg). A non-nil
// result with Problem set means WSL2 without usable GPUs.
func DetectWSL(root string) *WSL {
	root = cleanRoot(root)
	data, _ := os.ReadFile(filepath.Join(hostDir(root, "proc"), "proc/sys/kernel/osrelease"))
	release := strings.TrimSpace(string(data))
	dxg := filepath.Join(hostDir(root, "dev"), WSLDevice)
	_, dxgErr := os.Stat(dxg)
	if !isWSLKernel(release) && dxgErr != nil {
		return nil
	}
	w := &WSL{KernelRelease: release}
	if dxgErr == nil {
		w.Device = dxg
	}
	f := &finder{root: root, canon: map[string]string{}}
	w.Stores, w.DriverStore = wslStores(f)
	switch {
	case w.Device == "":
		w.Problem = "WSL2 without " + WSLDevice + ": GPU paravirtualization is off (install the NVIDIA driver on Windows, then run `wsl --update` and `wsl --shutdown` from Windows)"
	case !f.exists(filepath.Join(WSLLibDir, "libcuda.so.1")):
		w.Problem = "WSL2 without " + WSLLibDir + "/libcuda.so.1: the Windows NVIDIA driver's WSL libraries are missing (install a current NVIDIA driver on Windows)"
	case w.DriverStore == "":
		w.Problem = fmt.Sprintf("WSL2 without an NVIDIA driver store: no folder under %s holds %s (install a current NVIDIA driver on Windows)", WSLDriversDir, wslStoreMarker)
	}
	return w
}

// exists reports whether p (a path in the root) resolves to a file.
func (f *finder) exists(p string) bool {
	_, ok := f.resolve(p)
	return ok
}

// wslStores lists the driver store folders and picks the NVIDIA one: the
// folder holding libcuda.so.1.1. Several can, when Windows keeps an older
// driver's store; the most recently written wins, then the name.
func wslStores(f *finder) (all []string, nvidia string) {
	dir, ok := f.resolve(WSLDriversDir)
	if !ok {
		return nil, ""
	}
	ents, _ := os.ReadDir(f.host(dir))
	type cand struct {
		path string
		mod  int64
	}
	var cands []cand
	for _, e := range ents {
		p, ok := f.resolve(filepath.Join(dir, e.Name()))
		if !ok {
			continue
		}
		if fi, err := os.Stat(f.host(p)); err != nil || !fi.IsDir() {
			continue
		}
		all = append(all, p)
		m, ok := f.resolve(filepath.Join(p, wslStoreMarker))
		if !ok {
			continue
		}
		if fi, err := os.Stat(f.host(m)); err == nil && fi.Mode().IsRegular() {
			cands = append(cands, cand{p, fi.ModTime().UnixNano()})
		}
	}
	sort.Strings(all)
	if len(cands) == 0 {
		return all, ""
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].mod != cands[j].mod {
			return cands[i].mod > cands[j].mod
		}
		return cands[i].path < cands[j].path
	})
	return all, cands[0].path
}

// wslDriverIdentity is ReadDriverVersion's answer on WSL2: the identity of
// the Windows driver, or an error wrapping ErrNoDriver that says what is
// missing. ok is false when root is not WSL2.
func wslDriverIdentity(root string) (string, bool, error) {
	w := DetectWSL(root)
	if w == nil {
		return "", false, nil
	}
	if w.Problem != "" {
		return "", true, fmt.Errorf("%w (%s)", ErrNoDriver, w.Problem)
	}
	return w.Identity(), true, nil
}

// discoverWSL builds the WSL2 Inventory: from NVML (WSL's
// libnvidia-ml.so.1) when it loads, for GPU names, UUIDs and memory;
// otherwise from the files alone, which cannot tell the GPUs apart.
func discoverWSL(root string, w *WSL, nvml NVMLSource) *Inventory {
	if w.Problem != "" {
		return &Inventory{Source: SourceNone, DriverRoot: root, WSL: w, Note: w.Problem}
	}
	inv := &Inventory{Source: SourceWSL, DriverRoot: root, WSL: w}
	var note string
	if nvml != nil {
		n, err := nvml.Inventory()
		if err == nil {
			inv.Source, inv.GPUs, inv.CUDAVersion = SourceNVML, n.GPUs, n.CUDAVersion
			w.DriverVersion = n.DriverVersion
			if inv.CUDAVersion == "" {
				inv.CUDAVersion = CUDAVersionForDriver(n.DriverVersion)
			}
		} else {
			note = fmt.Sprintf("NVML not usable (%v)", err)
		}
	}
	// The recorded version is the driver store's identity on both paths,
	// so the runtime (no NVML) and the CLI agree on freshness.
	inv.DriverVersion = w.Identity()
	if inv.Source != SourceNVML {
		inv.Note = joinNote(note, "WSL2: GPU names and memory need NVML (libnvidia-ml.so.1); containers get every GPU through "+WSLDevice)
	}
	return inv
}

// wslFile is one file of the WSL2 driver in /usr/lib/wsl/lib.
type wslFile struct {
	name string
	cap  Capability
	bin  bool
}

// wslLibFiles are the files of /usr/lib/wsl/lib nvbind mounts, by
// capability (those present are mounted; Windows drivers vary).
var wslLibFiles = []wslFile{
	{name: "libdxcore.so", cap: CapUtility},
	{name: "libnvidia-ml.so.1", cap: CapUtility},
	{name: "libnvidia-ml_loader.so", cap: CapUtility},
	{name: "nvidia-smi", cap: CapUtility, bin: true},
	{name: "libcuda.so", cap: CapCompute},
	{name: "libcuda.so.1", cap: CapCompute},
	{name: "libcuda.so.1.1", cap: CapCompute},
	{name: "libcuda_loader.so", cap: CapCompute},
	{name: "libcudadebugger.so.1", cap: CapCompute},
	{name: "libnvdxgdmal.so.1", cap: CapCompute},
	{name: "libnvidia-ptxjitcompiler.so.1", cap: CapCompute},
	{name: "libnvcuvid.so", cap: CapVideo},
	{name: "libnvcuvid.so.1", cap: CapVideo},
	{name: "libnvidia-encode.so", cap: CapVideo},
	{name: "libnvidia-encode.so.1", cap: CapVideo},
	{name: "libnvidia-opticalflow.so", cap: CapVideo},
	{name: "libnvidia-opticalflow.so.1", cap: CapVideo},
	{name: "libd3d12.so", cap: CapGraphics},
	{name: "libd3d12core.so", cap: CapGraphics},
	{name: "libnvwgf2umx.so", cap: CapGraphics},
	{name: "libnvoptix.so.1", cap: CapGraphics},
	{name: "libnvdxdlkernels.so", cap: CapGraphics},
}

// FindWSLFiles finds the WSL2 driver's files under root, by capability:
// the /usr/lib/wsl/lib files present and the driver store folder (mounted
// whole, in the common edits, at its own path: the loader stubs find the
// real libraries there), the nvidia-smi link into /usr/bin and the folder
// for the ld cache.
func FindWSLFiles(root string, w *WSL) (*DriverFiles, error) {
	if w == nil || w.Problem != "" || w.DriverStore == "" {
		return nil, errors.New("no usable WSL2 driver")
	}
	f := &finder{root: cleanRoot(root), canon: map[string]string{}}
	d := &DriverFiles{Root: f.root, Version: w.Identity(), Sets: map[Capability]*FileSet{}}
	for _, c := range AllCapabilities {
		d.Sets[c] = &FileSet{}
	}
	lib, ok := f.resolve(WSLLibDir)
	if !ok {
		return nil, fmt.Errorf("%s not found", WSLLibDir)
	}
	for _, lf := range wslLibFiles {
		p := filepath.Join(lib, lf.name)
		fi, err := os.Lstat(f.host(p))
		if err != nil || !fi.Mode().IsRegular() {
			continue // links (none on a real WSL2) could lead elsewhere
		}
		s := d.Sets[lf.cap]
		if lf.bin {
			s.Binaries = append(s.Binaries, p)
			rel, _ := filepath.Rel("/usr/bin", p)
			s.Links = append(s.Links, Link{Target: rel, Link: "/usr/bin/" + lf.name})
			continue
		}
		s.Libraries = append(s.Libraries, p)
		s.Folders = appendUnique(s.Folders, lib)
	}
	if len(d.Sets[CapCompute].Libraries) == 0 {
		return nil, fmt.Errorf("no CUDA library in %s", WSLLibDir)
	}
	d.Sets[CapCompute].Libraries = append(d.Sets[CapCompute].Libraries, w.DriverStore)
	for _, s := range d.Sets {
		sortSet(s)
	}
	return d, nil
}

// DeviceZero is the index WSL2 also serves: one GPU asked for by index 0
// gets /dev/dxg like "all", the common single-GPU case.
const DeviceZero = "0"

// BuildWSLSpec assembles the WSL2 spec: devices "all" and "0" give
// /dev/dxg, "driver" gives the driver files without it; common edits mount
// the utility and compute files and the driver store, link nvidia-smi into
// /usr/bin and update the ld cache; capability devices for video and
// graphics when Windows ships those libraries.
func BuildWSLSpec(inv *Inventory, files *DriverFiles, opts GenerateOptions) (*specs.Spec, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if inv.WSL == nil {
		return nil, errors.New("not a WSL2 inventory")
	}
	root := cleanRoot(inv.DriverRoot)
	b := &specBuilder{opts: opts, root: root, dev: hostDir(root, "dev")}
	spec := &specs.Spec{Kind: Kind}
	gpu := edits{nodes: []string{WSLDevice}}
	spec.Devices = append(spec.Devices, gpu.device(DeviceAll, b), gpu.device(DeviceZero, b))

	var common edits
	common.add(files.Set(CapUtility))
	common.add(files.Set(CapCompute))
	common.ldFolders = true
	spec.ContainerEdits = common.containerEdits(b)
	spec.ContainerEdits.Env = []string{DriverVersionEnv + "=" + inv.DriverVersion}

	// A CDI device may not be empty; "driver" (NVIDIA_VISIBLE_DEVICES=none)
	// says in the env that the container has the driver but no GPU.
	driver := specs.Device{Name: DeviceDriver}
	driver.ContainerEdits.Env = []string{"NVBIND_WSL_GPU=none"}
	spec.Devices = append(spec.Devices, driver)

	for _, c := range []Capability{CapGraphics, CapVideo, CapDisplay} {
		var e edits
		if c == CapDisplay {
			e.add(files.Set(CapGraphics)) // no modeset node or X modules on WSL2
		} else {
			e.add(files.Set(c))
		}
		e.ldFolders = true
		if !e.empty() {
			spec.Devices = append(spec.Devices, e.device(CapabilityDevicePrefix+string(c), b))
		}
	}
	v, err := specs.MinimumRequiredVersion(spec)
	if err != nil {
		return nil, fmt.Errorf("cdi version: %w", err)
	}
	spec.Version = v
	return spec, nil
}

// buildWSLSpec finds WSL2's driver files and builds their spec.
func buildWSLSpec(inv *Inventory, opts GenerateOptions) (*specs.Spec, error) {
	files, err := FindWSLFiles(inv.DriverRoot, inv.WSL)
	if err != nil {
		return nil, fmt.Errorf("find WSL2 driver files: %w", err)
	}
	return BuildWSLSpec(inv, files, opts)
}

// discoverLocal is discovery without NVML, for the runtime: WSL2's files
// or procfs.
func discoverLocal(root string) (*Inventory, error) {
	if w := DetectWSL(root); w != nil {
		inv := discoverWSL(root, w, nil)
		if inv.Source == SourceNone {
			return nil, fmt.Errorf("%w (%s)", ErrNoDriver, w.Problem)
		}
		return inv, nil
	}
	return discoverProcfs(root)
}
