package engines

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	"tags.cncf.io/container-device-interface/pkg/cdi"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/gpu"
)

// Status is the outcome of one doctor check.
type Status string

const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	// Skip: the check does not apply here (no driver, engine not installed).
	Skip Status = "skip"
)

// Check is one line of `nvbind doctor`.
type Check struct {
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	// Fix is a concrete next step; empty when nothing is to be done.
	Fix string `json:"fix,omitempty"`
}

// Report is the whole doctor run.
type Report struct {
	Checks  []Check        `json:"checks"`
	Summary map[Status]int `json:"summary"`
}

// Failed reports whether any check failed (doctor then exits non-zero).
func (r *Report) Failed() bool { return r.Summary[Fail] > 0 }

// DoctorOptions are the inputs of Doctor; zero values mean the host.
type DoctorOptions struct {
	Config *config.Config
	// DriverRoot overrides Config.Driver.Root (a simulated root in tests).
	DriverRoot string
	// NVML, when set, is tried before the /proc fallback.
	NVML gpu.NVMLSource
	// RuntimePath is the nvbind-runtime engines should call.
	RuntimePath string
	// Engines is what Detect found; nil runs Detect.
	Engines []Engine
	// SysRoot is where /sys, /run and /dev/char are read ("" = "/").
	SysRoot string
	// ConfigError is why nvbind's config file could not be loaded (Config
	// then holds the defaults).
	ConfigError error
	// HookDirs are the hooks.d dirs to look in (nil: HookDirs).
	HookDirs []string
}

// specDriverVersion is the driver version nvbind recorded in a CDI spec it
// generated ("" when the spec does not say).
var specDriverVersion = gpu.SpecDriverVersion

type specsEdits = specs.ContainerEdits

// Doctor runs every check. It reads files and runs `--version` of a few
// binaries; it changes nothing.
func Doctor(opts DoctorOptions) *Report {
	if opts.Config == nil {
		opts.Config = config.Default()
	}
	if opts.DriverRoot == "" {
		opts.DriverRoot = opts.Config.Driver.Root
	}
	if opts.SysRoot == "" {
		opts.SysRoot = "/"
	}
	if opts.Engines == nil {
		opts.Engines = Detect()
	}
	d := &doctor{opts: opts}
	d.config()
	if d.wsl = gpu.DetectWSL(opts.DriverRoot); d.wsl != nil {
		d.wslDriver()
	} else {
		d.driver()
		d.workstation()
	}
	d.deviceNodes()
	d.nvml()
	d.cdiSpec()
	d.specTrust()
	d.specRefresh()
	d.engines()
	d.hookModes()
	d.binaries()
	d.cgroups()
	d.persistence()
	d.rootless()
	r := &Report{Checks: d.checks, Summary: map[Status]int{Pass: 0, Warn: 0, Fail: 0, Skip: 0}}
	for _, c := range d.checks {
		r.Summary[c.Status]++
	}
	return r
}

type doctor struct {
	opts   DoctorOptions
	checks []Check
	// version is the loaded driver's version ("" when none).
	version string
	inv     *gpu.Inventory
	// wsl is set on WSL2 (doctor_workstation.go).
	wsl *gpu.WSL
}

func (d *doctor) add(name string, s Status, fix, format string, a ...any) {
	d.checks = append(d.checks, Check{Name: name, Status: s, Message: fmt.Sprintf(format, a...), Fix: fix})
}

func (d *doctor) root(p string) string { return filepath.Join(d.opts.DriverRoot, p) }

// dev is where a device node is looked up: in the driver root when it has
// its own nodes (a simulated root), else on the host (a driver container's
// root, such as /run/nvidia/driver, has none).
func (d *doctor) dev(n string) string {
	if d.wsl != nil {
		return d.wslDev(n)
	}
	if _, err := os.Stat(d.root("dev/nvidiactl")); err == nil {
		return d.root(n)
	}
	return n
}

func (d *doctor) sys(p string) string { return filepath.Join(d.opts.SysRoot, p) }

const noDriver = "no NVIDIA driver loaded"

func (d *doctor) config() {
	switch cfg := d.opts.Config; {
	case d.opts.ConfigError != nil:
		d.add("config", Fail, "fix the file (see `nvbind --help` for the keys)", "%v; using built-in defaults", d.opts.ConfigError)
	case cfg.Path == "":
		d.add("config", Pass, "", "no %s: using built-in defaults", config.Path())
	default:
		d.add("config", Pass, "", "%s loaded", cfg.Path)
	}
}

func (d *doctor) driver() {
	v, err := gpu.ReadDriverVersion(d.opts.DriverRoot)
	if err == nil {
		d.version = v
		d.inv, err = gpu.Discover(gpu.DiscoverOptions{DriverRoot: d.opts.DriverRoot, NVML: d.opts.NVML})
		if err != nil {
			d.add("driver", Fail, "check `dmesg | grep -i nvrm` for driver errors",
				"driver %s is loaded but its GPUs cannot be read: %v", v, err)
			return
		}
		d.add("driver", Pass, "", "NVIDIA driver %s loaded, %s", v, describeGPUs(d.inv))
		return
	}
	if !errors.Is(err, gpu.ErrNoDriver) {
		d.add("driver", Fail, "check `dmesg | grep -i nvrm`; reinstall the driver if the file is damaged", "%v", err)
		return
	}
	sys := gpu.SysRoot(d.opts.DriverRoot, d.opts.SysRoot) // a simulated root's own sysfs
	if gpus := nvidiaPCIDevices(filepath.Join(sys, "sys/bus/pci/devices")); len(gpus) > 0 {
		d.add("driver", Fail, "install the NVIDIA driver for your distribution, then load it: modprobe nvidia",
			"an NVIDIA GPU is present (%s) but %s", strings.Join(gpus, ", "), noDriver)
		return
	}
	d.add("driver", Warn, "nothing to do on a machine without an NVIDIA GPU; on a GPU machine install the NVIDIA driver",
		"no NVIDIA GPU and %s on this machine: nvbind has no GPU to give containers here", noDriver)
}

func describeGPUs(inv *gpu.Inventory) string {
	switch len(inv.GPUs) {
	case 0:
		return "no GPU found"
	case 1:
		return "1 GPU (" + inv.GPUs[0].Name + ")"
	}
	return fmt.Sprintf("%d GPUs (%s, ...)", len(inv.GPUs), inv.GPUs[0].Name)
}

// nvidiaPCIDevices lists PCI display controllers from vendor 0x10de.
func nvidiaPCIDevices(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		vendor, _ := os.ReadFile(filepath.Join(dir, e.Name(), "vendor"))
		class, _ := os.ReadFile(filepath.Join(dir, e.Name(), "class"))
		if strings.TrimSpace(string(vendor)) == "0x10de" && strings.HasPrefix(strings.TrimSpace(string(class)), "0x03") {
			out = append(out, e.Name())
		}
	}
	return out
}

const nvidiaMajor = 195

// gpuNodes are the device nodes the containers need: one per GPU, the
// control node and UVM.
func (d *doctor) gpuNodes() []string {
	if d.wsl != nil {
		return []string{gpu.WSLDevice}
	}
	var nodes []string
	for _, g := range d.inv.GPUs {
		nodes = append(nodes, fmt.Sprintf("/dev/nvidia%d", g.Minor))
	}
	return append(nodes, "/dev/nvidiactl", "/dev/nvidia-uvm")
}

func (d *doctor) deviceNodes() {
	const name = "device-nodes"
	if d.version == "" {
		d.add(name, Skip, "", noDriver)
		return
	}
	if d.wsl != nil {
		d.wslDeviceNode()
		return
	}
	uvmMajor := d.procMajor("nvidia-uvm")
	var bad []string
	for _, n := range d.gpuNodes() {
		want := uint32(nvidiaMajor)
		switch n {
		case "/dev/nvidia-uvm":
			want = uvmMajor
		}
		var st unix.Stat_t
		if err := unix.Stat(d.dev(n), &st); err != nil {
			bad = append(bad, n+" missing")
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR {
			bad = append(bad, n+" is not a character device")
			continue
		}
		if got := unix.Major(uint64(st.Rdev)); want != 0 && got != want {
			bad = append(bad, fmt.Sprintf("%s has major %d, want %d", n, got, want))
		}
	}
	if len(bad) > 0 {
		d.add(name, Fail, "create them with nvidia-modprobe -c <minor> -u (or modprobe nvidia-uvm), or reload the driver",
			"%s", strings.Join(bad, "; "))
		return
	}
	d.add(name, Pass, "", "%s present with the right majors", strings.Join(d.gpuNodes(), ", "))
}

// procMajor reads a character device's major from /proc/devices (0 when
// unknown: a simulated root may not have the file).
func (d *doctor) procMajor(dev string) uint32 {
	proc := d.root("proc/devices")
	if _, err := os.Stat(d.root("proc/driver/nvidia")); err != nil {
		proc = "/proc/devices" // a driver container root has no /proc
	}
	data, err := os.ReadFile(proc)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[1] == dev {
			n, _ := strconv.ParseUint(f[0], 10, 32)
			return uint32(n)
		}
	}
	return 0
}

func (d *doctor) nvml() {
	const name = "nvml"
	switch {
	case d.version == "":
		d.add(name, Skip, "", noDriver)
	case d.wsl != nil && d.inv.Source != gpu.SourceNVML:
		d.wslNVML()
	case d.opts.NVML == nil:
		d.add(name, Skip, "", "this nvbind build has no NVML support; GPU facts come from /proc")
	case d.inv.Source == gpu.SourceNVML:
		d.add(name, Pass, "", "NVML loads; CUDA driver API %s", d.inv.CUDAVersion)
	default:
		d.add(name, Warn, "install the driver's user-space libraries (libnvidia-ml.so.1) and run ldconfig",
			"%s: memory sizes and compute capabilities are unknown", d.inv.Note)
	}
}

func (d *doctor) cdiSpec() {
	const name = "cdi-spec"
	cfg := d.opts.Config
	if d.version == "" {
		d.add(name, Skip, "", noDriver)
		return
	}
	cache, err := cdi.NewCache(cdi.WithSpecDirs(cfg.CDI.SpecDirs...), cdi.WithAutoRefresh(false))
	if cache == nil {
		d.add(name, Fail, "check the permissions of "+strings.Join(cfg.CDI.SpecDirs, ", "), "cannot read CDI specs: %v", err)
		return
	}
	gen := "nvbind cdi generate"
	errs := cache.GetErrors()
	paths := make([]string, 0, len(errs))
	for p := range errs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		d.add(name, Fail, "fix or remove the file; for nvbind's own spec: "+gen, "%s: %v", p, errors.Join(errs[p]...))
	}
	vendor, class, _ := strings.Cut(cfg.CDI.DefaultKind, "/")
	var specs []*cdi.Spec
	for _, s := range cache.GetVendorSpecs(vendor) {
		if s.GetClass() == class {
			specs = append(specs, s)
		}
	}
	if len(specs) == 0 {
		msg := fmt.Sprintf("no CDI spec for %s in %s", cfg.CDI.DefaultKind, strings.Join(cfg.CDI.SpecDirs, ", "))
		if cfg.CDI.JITSpec != "" {
			msg += "; nvbind-runtime writes one to " + cfg.CDI.JITSpec + " on first use, but engines' own CDI (podman --device " + cfg.CDI.DefaultKind + "=0) need it now"
		}
		d.add(name, Warn, gen, "%s", msg)
		return
	}
	for _, s := range specs {
		if missing := missingHostPaths(s); len(missing) > 0 {
			d.add(name, Fail, gen, "%s is stale: %s no longer exist (driver upgraded?)", s.GetPath(), strings.Join(missing, ", "))
			continue
		}
		switch v := specDriverVersion(s); {
		case v == "":
			d.add(name, Pass, "", "%s: every path it names exists (it does not record a driver version)", s.GetPath())
		case v != d.version:
			d.add(name, Fail, gen, "%s was made for driver %s, the loaded driver is %s", s.GetPath(), v, d.version)
		default:
			d.add(name, Pass, "", "%s matches driver %s", s.GetPath(), v)
		}
	}
}

// missingHostPaths lists the device nodes, mounts and hooks of a spec that
// are not on the host (at most three, then a count).
func missingHostPaths(s *cdi.Spec) []string {
	var paths []string
	collect := func(e *specsEdits) {
		for _, n := range e.DeviceNodes {
			p := n.HostPath
			if p == "" {
				p = n.Path
			}
			paths = append(paths, p)
		}
		for _, m := range e.Mounts {
			if m.Type == "" || m.Type == "bind" {
				paths = append(paths, m.HostPath)
			}
		}
		for _, h := range e.Hooks {
			paths = append(paths, h.Path)
		}
	}
	collect(&s.ContainerEdits)
	for i := range s.Devices {
		collect(&s.Devices[i].ContainerEdits)
	}
	var missing []string
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 3 {
		missing = append(missing[:3], fmt.Sprintf("and %d more", len(missing)-3))
	}
	return missing
}

func (d *doctor) engines() {
	installed := 0
	for _, e := range d.opts.Engines {
		name := "engine-" + e.Name
		what := e.Name
		if e.Version != "" {
			what += " " + e.Version
		}
		configure := configureFix(e.Name, "")
		switch {
		case !e.Installed && !e.Registered:
			d.add(name, Skip, "", "%s is not installed", e.Name)
			continue
		case e.Error != "":
			d.add(name, Fail, "fix the file, then run "+configure, "%s: %s", what, e.Error)
		case !e.Registered:
			d.add(name, Warn, configure, "%s: nvbind is not registered (%s)", what, e.ConfigPath)
		case !executable(e.RuntimePath):
			d.add(name, Fail, configureFix(e.Name, " --path /path/to/nvbind-runtime"),
				"%s: nvbind is registered in %s but %s is not an executable file", what, e.ConfigPath, e.RuntimePath)
		default:
			d.add(name, Pass, "", "%s: nvbind registered in %s (%s)", what, e.ConfigPath, e.RuntimePath)
		}
		if e.Installed {
			installed++
		}
	}
	if installed == 0 {
		d.add("engines", Warn, "install one: apt-get install podman (or docker.io, containerd)",
			"no container engine found (docker, containerd, podman, crio)")
	}
}

// restartHint is how each engine picks up a changed config.
var restartHint = map[string]string{
	Docker:     "systemctl reload docker",
	Containerd: "systemctl restart containerd",
	CRIO:       "systemctl restart crio",
}

func configureFix(engine, flags string) string {
	fix := "nvbind runtime configure --runtime " + engine + flags
	if restart := restartHint[engine]; restart != "" {
		fix += " && " + restart
	}
	return fix
}

// executable: an absolute path to an executable file, or a name on PATH.
func executable(p string) bool {
	if !filepath.IsAbs(p) {
		_, err := exec.LookPath(p)
		return err == nil
	}
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func (d *doctor) binaries() {
	cfg := d.opts.Config
	var found, tried []string
	for _, r := range cfg.Runtime.Runtimes {
		tried = append(tried, r)
		if p, err := exec.LookPath(r); err == nil {
			v := binaryVersion(p)
			found = append(found, strings.TrimSpace(fmt.Sprintf("%s %s (%s)", r, v, p)))
			break
		}
	}
	if len(found) == 0 {
		d.add("low-level-runtime", Fail, "install runc: apt-get install runc (or set runtime.runtimes in "+config.DefaultPath+")",
			"none of %s found", strings.Join(tried, ", "))
	} else {
		d.add("low-level-runtime", Pass, "", "nvbind-runtime hands off to %s", found[0])
	}
	for _, b := range []struct{ name, path, why, fix string }{
		{"nvbind-runtime", d.opts.RuntimePath, "engines run it for --runtime nvbind",
			"install nvbind-runtime beside nvbind or in /usr/local/bin"},
		{"nvbind-hook", cfg.HookPath(), "the hooks of nvbind's CDI specs run it",
			"install nvbind-hook there, or set hook.path in " + config.DefaultPath + " and run nvbind cdi generate"},
	} {
		if b.path == "" {
			continue
		}
		if executable(b.path) {
			d.add(b.name, Pass, "", "%s is executable", b.path)
		} else {
			d.add(b.name, Fail, b.fix, "%s is missing or not executable; %s", b.path, b.why)
		}
	}
}

// cgroups reports the cgroup version and manager, and checks what keeps
// GPU access across `systemctl daemon-reload`: systemd re-applies a
// container's device rules by /dev/char/MAJOR:MINOR, so a GPU node without
// that link loses its rule and the container sees "Failed to initialize
// NVML: Unknown Error".
func (d *doctor) cgroups() {
	const name = "cgroups"
	version := cgroupVersion(d.sys("sys/fs/cgroup"))
	_, err := os.Stat(d.sys("run/systemd/system"))
	systemd := err == nil
	manager := "cgroupfs (no systemd)"
	if systemd {
		manager = "systemd"
	}
	if !systemd || d.version == "" {
		d.add(name, Pass, "", "cgroup %s, manager %s: `systemctl daemon-reload` cannot take GPU access away here", version, manager)
		return
	}
	var missing []string
	for _, n := range d.gpuNodes() {
		var st unix.Stat_t
		if unix.Stat(d.dev(n), &st) != nil {
			continue
		}
		link := fmt.Sprintf("dev/char/%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
		if _, err := os.Stat(d.sys(link)); err != nil {
			missing = append(missing, "/"+link+" -> "+n)
		}
	}
	if len(missing) > 0 {
		d.add(name, Warn,
			`create the links: for n in /dev/nvidia*; do [ -c "$n" ] && ln -sf "$n" "/dev/char/$(printf '%d:%d' 0x$(stat -c %t "$n") 0x$(stat -c %T "$n"))"; done`,
			"cgroup %s, manager systemd: after `systemctl daemon-reload` containers lose GPU access because these links are missing: %s",
			version, strings.Join(missing, ", "))
		return
	}
	d.add(name, Pass, "", "cgroup %s, manager systemd: /dev/char links exist, GPU access survives `systemctl daemon-reload`", version)
}

func cgroupVersion(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v2"
	}
	if err := unix.Statfs(filepath.Join(dir, "unified"), &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v1 (hybrid)"
	}
	return "v1"
}

func (d *doctor) persistence() {
	const name = "persistence"
	if d.version == "" {
		d.add(name, Skip, "", noDriver)
		return
	}
	if d.wsl != nil {
		d.add(name, Skip, "", "WSL2: Windows keeps the GPU initialized (no nvidia-persistenced)")
		return
	}
	for _, p := range []string{d.root("run/nvidia-persistenced/socket"), d.sys("run/nvidia-persistenced/socket")} {
		if _, err := os.Stat(p); err == nil {
			d.add(name, Pass, "", "nvidia-persistenced is running (%s)", p)
			return
		}
	}
	d.add(name, Warn, "systemctl enable --now nvidia-persistenced (or nvidia-smi -pm 1)",
		"nvidia-persistenced is not running: the first CUDA call in each container waits seconds for the GPU to initialize")
}

// rootless checks what rootless Podman needs: read/write on the device
// nodes and read access to the CDI spec directories.
func (d *doctor) rootless() {
	const name = "rootless"
	if d.version == "" {
		d.add(name, Skip, "", noDriver)
		return
	}
	var closed []string
	for _, n := range d.gpuNodes() {
		fi, err := os.Stat(d.dev(n))
		if err != nil {
			continue
		}
		if fi.Mode().Perm()&0o006 != 0o006 {
			closed = append(closed, fmt.Sprintf("%s (%04o %s)", n, fi.Mode().Perm(), groupOf(fi)))
		}
	}
	for _, dir := range d.opts.Config.CDI.SpecDirs {
		if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			closed = append(closed, fmt.Sprintf("%s (%04o)", dir, fi.Mode().Perm()))
		}
	}
	if len(closed) > 0 {
		d.add(name, Warn,
			"add rootless users to the nodes' group and run podman with --group-add keep-groups, or load the driver with NVreg_DeviceFileMode=0666; chmod 755 the CDI spec directories",
			"rootless containers cannot use: %s", strings.Join(closed, ", "))
		return
	}
	d.add(name, Pass, "", "device nodes are read/write for all users and CDI spec directories are readable: rootless Podman works")
}

func groupOf(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	gid := strconv.Itoa(int(st.Gid))
	if g, err := user.LookupGroupId(gid); err == nil {
		return "group " + g.Name
	}
	return "gid " + gid
}
