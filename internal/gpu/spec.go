package gpu

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	"tags.cncf.io/container-device-interface/pkg/cdi"
	specs "tags.cncf.io/container-device-interface/specs-go"
)

// spec.go turns an Inventory and DriverFiles into a CDI spec of kind
// nvidia.com/gpu (see notes/contracts.md):
//   - devices by index ("0", MIG "0:1"), by UUID, "all", "driver" (no GPU,
//     the common edits only) and one "capability-<cap>" device per driver
//     capability beyond utility and compute (display includes graphics);
//   - common edits: control nodes, utility + compute files, IPC sockets,
//     firmware, and the nvbind-hook createContainer hooks;
//   - the driver version recorded as the env NVBIND_DRIVER_VERSION in the
//     common edits (see DriverVersionEnv for why not an annotation);
//   - cdiVersion: the lowest version the content needs.

// Kind is the CDI kind of nvbind's GPU specs.
const Kind = "nvidia.com/gpu"

// DriverVersionEnv records, in the common edits, the driver version a spec
// was made for. Spec annotations would be the natural place, but they need
// cdiVersion 0.6.0 and Debian 12's Podman 4.3 reads at most 0.5.0; every
// spec with digit-named devices already needs 0.5.0. The env costs nothing,
// keeps the spec readable by Podman 4.3, and tells a container which driver
// it got. The generator is named in the YAML header comment.
const DriverVersionEnv = "NVBIND_DRIVER_VERSION"

// HookEnv is the whole environment of the hooks nvbind's specs declare.
// Without an env of its own a createContainer hook may get the image's
// (LD_PRELOAD, GODEBUG, GOMAXPROCS...), which must never reach a host
// binary; nvbind-hook takes exactly this as clean (hook.Env, kept equal by
// a test).
var HookEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}

// Device names that are not GPUs.
const (
	DeviceAll    = "all"
	DeviceDriver = "driver"
	// CapabilityDevicePrefix + capability names a capability device.
	CapabilityDevicePrefix = "capability-"
)

// Device-name strategies.
const (
	NameByIndex = "index"
	NameByUUID  = "uuid"
)

// GenerateOptions controls spec generation.
type GenerateOptions struct {
	// DriverRoot is where the driver is installed ("" = "/").
	DriverRoot string
	// HookPath is nvbind-hook's absolute path on the host.
	HookPath string
	// Format is "yaml" (default) or "json".
	Format string
	// DeviceNameStrategies: any of "index", "uuid"; empty means both.
	DeviceNameStrategies []string
	// Generator is named in the YAML header ("nvbind 0.1.0").
	Generator string
	// NVML is used by Discover when set (never by WriteJITSpec).
	NVML NVMLSource
}

func (o *GenerateOptions) check() error {
	if o.HookPath == "" || !filepath.IsAbs(o.HookPath) {
		return fmt.Errorf("hook path %q is not absolute", o.HookPath)
	}
	switch o.Format {
	case "", "yaml", "json":
	default:
		return fmt.Errorf("format %q is not yaml or json", o.Format)
	}
	for _, s := range o.DeviceNameStrategies {
		if s != NameByIndex && s != NameByUUID {
			return fmt.Errorf("device name strategy %q is not index or uuid", s)
		}
	}
	return nil
}

func (o *GenerateOptions) strategy(s string) bool {
	if len(o.DeviceNameStrategies) == 0 {
		return true
	}
	for _, x := range o.DeviceNameStrategies {
		if x == s {
			return true
		}
	}
	return false
}

// Generate discovers the GPUs and driver files under opts.DriverRoot and
// returns the spec, encoded and validated by the CDI library.
func Generate(opts GenerateOptions) ([]byte, *Inventory, error) {
	if err := opts.check(); err != nil {
		return nil, nil, err
	}
	inv, err := Discover(DiscoverOptions{DriverRoot: opts.DriverRoot, NVML: opts.NVML})
	if err != nil {
		return nil, nil, err
	}
	if inv.Source == SourceNone {
		return nil, inv, fmt.Errorf("cannot generate a CDI spec: %s", inv.Note)
	}
	data, err := generateFor(inv, opts)
	return data, inv, err
}

func generateFor(inv *Inventory, opts GenerateOptions) ([]byte, error) {
	build := buildLinuxSpec
	if inv.WSL != nil {
		build = buildWSLSpec
	}
	spec, err := build(inv, opts)
	if err != nil {
		return nil, err
	}
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	return Encode(spec, opts.Format, opts.Generator)
}

// buildLinuxSpec finds the Linux driver's files and builds their spec.
func buildLinuxSpec(inv *Inventory, opts GenerateOptions) (*specs.Spec, error) {
	files, err := FindDriverFiles(inv.DriverRoot, inv.DriverVersion)
	if err != nil {
		return nil, fmt.Errorf("find driver files: %w", err)
	}
	return BuildSpec(inv, files, opts)
}

// BuildSpec assembles the spec from what discovery found.
func BuildSpec(inv *Inventory, files *DriverFiles, opts GenerateOptions) (*specs.Spec, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	b := &specBuilder{opts: opts, root: cleanRoot(inv.DriverRoot)}
	b.dev = devRoot(b.root)
	b.migMinors = migMinors(procRoot(b.root))

	spec := &specs.Spec{Kind: Kind}
	var all edits
	for _, g := range inv.GPUs {
		e := b.gpuEdits(g)
		all.merge(e)
		if opts.strategy(NameByIndex) {
			spec.Devices = append(spec.Devices, e.device(strconv.Itoa(g.Index), b))
		}
		if opts.strategy(NameByUUID) && g.UUID != "" {
			spec.Devices = append(spec.Devices, e.device(g.UUID, b))
		}
	}
	for _, g := range inv.GPUs {
		for _, m := range g.MIGDevices {
			e, ok := b.migEdits(g, m)
			if !ok {
				continue
			}
			if opts.strategy(NameByIndex) {
				spec.Devices = append(spec.Devices, e.device(fmt.Sprintf("%d:%d", g.Index, m.Index), b))
			}
			if opts.strategy(NameByUUID) && m.UUID != "" {
				spec.Devices = append(spec.Devices, e.device(m.UUID, b))
			}
		}
	}
	if len(inv.GPUs) > 0 {
		spec.Devices = append(spec.Devices, all.device(DeviceAll, b))
	}

	// Common edits: control nodes, utility + compute files, hooks.
	var common edits
	for _, n := range []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"} {
		if b.exists(n) {
			common.nodes = append(common.nodes, n)
		}
	}
	common.add(files.Set(CapUtility))
	common.add(files.Set(CapCompute))
	common.ldFolders = true
	spec.ContainerEdits = common.containerEdits(b)
	spec.ContainerEdits.Env = []string{DriverVersionEnv + "=" + inv.DriverVersion}
	// The devices the spec was made from, so that a create notices a GPU
	// added or removed or MIG reconfigured under the same driver.
	if fp, err := DeviceFingerprint(b.root); err == nil {
		spec.ContainerEdits.Env = append(spec.ContainerEdits.Env, DevicesEnv+"="+fp)
	}

	// "driver": GPU-less access to the driver (NVIDIA_VISIBLE_DEVICES=none).
	// A CDI device may not be empty, so it names the control node again;
	// injecting a node twice yields one node.
	driver := edits{nodes: []string{"/dev/nvidiactl"}}
	spec.Devices = append(spec.Devices, driver.device(DeviceDriver, b))

	for _, c := range AllCapabilities {
		if c == CapUtility || c == CapCompute {
			continue
		}
		var e edits
		if c == CapDisplay {
			// Display is graphics plus the modeset node and X modules, so
			// a display request alone gets a working GL stack. Requested
			// together, CDI replaces the repeated mounts and nodes.
			e.add(files.Set(CapGraphics))
		}
		e.add(files.Set(c))
		e.ldFolders = c == CapCompat32
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

type specBuilder struct {
	opts      GenerateOptions
	root, dev string
	migMinors map[string]int
}

// exists reports whether a device node exists under the device root.
func (b *specBuilder) exists(node string) bool {
	_, err := os.Stat(filepath.Join(b.dev, node))
	return err == nil
}

func (b *specBuilder) gpuEdits(g GPU) edits {
	e := edits{nodes: []string{fmt.Sprintf("/dev/nvidia%d", g.Minor)}}
	// The GPU's DRM nodes, matched by PCI bus through /dev/dri/by-path.
	for _, kind := range []string{"card", "render"} {
		link := fmt.Sprintf("/dev/dri/by-path/pci-%s-%s", g.BusID, kind)
		target, err := os.Readlink(filepath.Join(b.dev, link))
		if err != nil {
			continue
		}
		node := filepath.Join("/dev/dri", filepath.Base(target))
		if b.exists(node) {
			e.nodes = append(e.nodes, node)
			e.links = append(e.links, Link{Target: "../" + filepath.Base(target), Link: link})
			e.chmodDRI = true
		}
	}
	return e
}

// migEdits gives a MIG device its parent GPU node and the nvidia-caps
// nodes of its GPU instance and compute instance. It reports false when
// the capability minors are unknown: such a device could not work.
func (b *specBuilder) migEdits(g GPU, m MIG) (edits, bool) {
	gi, ok1 := b.migMinors[fmt.Sprintf("gpu%d/gi%d/access", g.Minor, m.GIID)]
	ci, ok2 := b.migMinors[fmt.Sprintf("gpu%d/gi%d/ci%d/access", g.Minor, m.GIID, m.CIID)]
	if !ok1 || !ok2 {
		return edits{}, false
	}
	return edits{nodes: []string{
		fmt.Sprintf("/dev/nvidia%d", g.Minor),
		fmt.Sprintf("/dev/nvidia-caps/nvidia-cap%d", gi),
		fmt.Sprintf("/dev/nvidia-caps/nvidia-cap%d", ci),
	}}, true
}

// edits collects one device's (or the common) edits before they become
// CDI container edits.
type edits struct {
	nodes     []string
	libraries []string
	binaries  []string
	files     []string
	ipc       []string
	links     []Link
	folders   []string
	ldFolders bool
	chmodDRI  bool
}

func (e *edits) empty() bool {
	return len(e.nodes)+len(e.libraries)+len(e.binaries)+len(e.files)+len(e.ipc)+len(e.links) == 0
}

func (e *edits) add(s *FileSet) {
	e.nodes = append(e.nodes, s.Nodes...)
	e.libraries = append(e.libraries, s.Libraries...)
	e.binaries = append(e.binaries, s.Binaries...)
	e.files = append(e.files, s.Files...)
	e.ipc = append(e.ipc, s.IPC...)
	e.links = append(e.links, s.Links...)
	e.folders = append(e.folders, s.Folders...)
}

func (e *edits) merge(o edits) {
	for _, n := range o.nodes {
		e.nodes = appendUnique(e.nodes, n)
	}
	e.links = append(e.links, o.links...)
	e.chmodDRI = e.chmodDRI || o.chmodDRI
}

// Mount options: libraries and binaries must stay executable (mmap with
// PROT_EXEC); everything else gets noexec.
var (
	execMountOptions   = []string{"ro", "nosuid", "nodev", "rbind", "rprivate"}
	noexecMountOptions = []string{"ro", "nosuid", "nodev", "noexec", "rbind", "rprivate"}
)

func (e *edits) containerEdits(b *specBuilder) specs.ContainerEdits {
	var ce specs.ContainerEdits
	for _, n := range e.nodes {
		dn := &specs.DeviceNode{Path: n}
		if b.dev != "/" {
			dn.HostPath = filepath.Join(b.dev, n)
		}
		ce.DeviceNodes = append(ce.DeviceNodes, dn)
	}
	mount := func(paths []string, opts []string) {
		for _, p := range paths {
			ce.Mounts = append(ce.Mounts, &specs.Mount{HostPath: filepath.Join(b.root, p), ContainerPath: p, Options: opts})
		}
	}
	mount(e.libraries, execMountOptions)
	mount(e.binaries, execMountOptions)
	mount(e.files, noexecMountOptions)
	mount(e.ipc, noexecMountOptions)
	sort.SliceStable(ce.Mounts, func(i, j int) bool { return ce.Mounts[i].ContainerPath < ce.Mounts[j].ContainerPath })

	hook := func(args ...string) {
		ce.Hooks = append(ce.Hooks, &specs.Hook{
			HookName: cdi.CreateContainerHook,
			Path:     b.opts.HookPath,
			Args:     append([]string{"nvbind-hook"}, args...),
			Env:      HookEnv,
		})
	}
	if len(e.links) > 0 {
		links := append([]Link(nil), e.links...)
		sort.SliceStable(links, func(i, j int) bool { return links[i].Link < links[j].Link })
		args := []string{"create-symlinks"}
		for i, l := range links {
			if i > 0 && l.Link == links[i-1].Link {
				continue
			}
			args = append(args, "--link", l.Target+"::"+l.Link)
		}
		hook(args...)
	}
	if e.ldFolders && len(e.folders) > 0 {
		folders := append([]string(nil), e.folders...)
		sort.Strings(folders)
		args := []string{"update-ldcache"}
		for i, f := range folders {
			if i == 0 || f != folders[i-1] {
				args = append(args, "--folder", f)
			}
		}
		hook(args...)
	}
	if e.chmodDRI {
		hook("chmod", "--mode", "755", "--path", "/dev/dri")
	}
	return ce
}

func (e *edits) device(name string, b *specBuilder) specs.Device {
	return specs.Device{Name: name, ContainerEdits: e.containerEdits(b)}
}

// Validate parses encoded spec bytes and validates them with the CDI
// library's own checks (cdi.ReadSpec: strict decoding, version, names,
// edits), exactly as a consumer reading the file would. The bytes are
// handed over through a memfd, so nothing touches the disk. Generation
// validates the spec in memory (validateSpec); Validate is for specs read
// from elsewhere and for tests.
func Validate(data []byte) error {
	fd, err := unix.MemfdCreate("nvbind-cdi-spec", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("validate spec: %w", err)
	}
	f := os.NewFile(uintptr(fd), "nvbind-cdi-spec")
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("validate spec: %w", err)
	}
	if _, err := cdi.ReadSpec(fmt.Sprintf("/proc/self/fd/%d", fd), 0); err != nil {
		return fmt.Errorf("generated spec is not valid CDI: %w", err)
	}
	return nil
}

// SpecDriverVersion returns the driver version nvbind recorded in a spec it
// made ("" for none, e.g. a spec made by another tool).
func SpecDriverVersion(spec *cdi.Spec) string {
	if spec == nil || spec.Spec == nil {
		return ""
	}
	return SpecDriverVersionOf(spec.Spec)
}

// SpecDriverVersionOf is SpecDriverVersion for a raw spec.
func SpecDriverVersionOf(spec *specs.Spec) string {
	for _, e := range spec.ContainerEdits.Env {
		if v, ok := strings.CutPrefix(e, DriverVersionEnv+"="); ok {
			return v
		}
	}
	return ""
}
