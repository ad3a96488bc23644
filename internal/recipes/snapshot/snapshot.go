// Package snapshot measures this node, offline, into an AICR-format
// Snapshot: OS release, kernel, cgroup version, kernel modules and command
// line, GPUs with driver and CUDA versions, container engines and whether
// nvbind is registered with them (package recipes/kube adds the cluster's
// view). A reading that cannot be taken is recorded as unreadable
// with the reason; the snapshot is then marked partial.
package snapshot

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/nvbind/nvbind/internal/engines"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/recipes"
)

// Options says what to measure and where.
type Options struct {
	// Root is the host's root for /etc, /proc and /sys ("" = /); tests
	// point it at a fake tree.
	Root string
	// GPU is passed to gpu.Discover.
	GPU gpu.DiscoverOptions
	// Version is nvbind's version, recorded in metadata and NVBind.runtime.
	Version string
}

// The discovery calls, replaceable in tests.
var (
	discoverGPUs  = gpu.Discover
	detectEngines = engines.Detect
)

// Collect measures the node. It never fails as a whole: what cannot be read
// is marked unreadable in the snapshot.
func Collect(opts Options) *recipes.Snapshot {
	root := opts.Root
	if root == "" {
		root = "/"
	}
	s := &recipes.Snapshot{
		Kind:       recipes.KindSnapshot,
		APIVersion: recipes.SnapshotAPIVersion,
		Metadata:   map[string]any{"generator": "nvbind snapshot"},
	}
	if opts.Version != "" {
		s.Metadata["version"] = opts.Version
	}
	if h := hostname(root); h != "" {
		s.Metadata["source"] = h
	}
	osRelease(s, root)
	kernel(s, root)
	cgroupVersion(s, root)
	kernelModules(s, root)
	commandLine(s, root)
	gpus(s, opts.GPU)
	containerEngines(s, opts.Version)
	s.Sort()
	return s
}

func hostname(root string) string {
	if data, err := os.ReadFile(filepath.Join(root, "proc/sys/kernel/hostname")); err == nil {
		return strings.TrimSpace(string(data))
	}
	if root == "/" {
		h, _ := os.Hostname()
		return h
	}
	return ""
}

// osRelease records /etc/os-release (or /usr/lib/os-release) as OS.release.
func osRelease(s *recipes.Snapshot, root string) {
	var data []byte
	var err error
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		if data, err = os.ReadFile(filepath.Join(root, p)); err == nil {
			break
		}
	}
	if err != nil {
		s.MarkUnreadable("OS.release", err.Error())
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		s.Set("OS", "release", k, unquote(v))
	}
}

// unquote reads an os-release value: bare, or in single or double quotes
// with backslash escapes in the double-quoted form.
func unquote(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		if u, err := strconv.Unquote(v); err == nil {
			return u
		}
		return v[1 : len(v)-1]
	}
	return v
}

// kernel records the running kernel's release the way AICR does, as the
// sysctl /proc/sys/kernel/osrelease.
func kernel(s *recipes.Snapshot, root string) {
	const key = "/proc/sys/kernel/osrelease"
	data, err := os.ReadFile(filepath.Join(root, key))
	if err != nil {
		s.MarkUnreadable("OS.sysctl."+key, err.Error())
		return
	}
	s.Set("OS", "sysctl", key, strings.TrimSpace(string(data)))
}

// cgroupVersion records OS.cgroup.version: 2 when the unified hierarchy is
// mounted at /sys/fs/cgroup, else 1.
func cgroupVersion(s *recipes.Snapshot, root string) {
	dir := filepath.Join(root, "sys/fs/cgroup")
	if _, err := os.Stat(filepath.Join(dir, "cgroup.controllers")); err == nil {
		s.Set("OS", "cgroup", "version", 2)
		return
	}
	if _, err := os.Stat(dir); err != nil {
		s.MarkUnreadable("OS.cgroup.version", err.Error())
		return
	}
	s.Set("OS", "cgroup", "version", 1)
}

// kernelModules records each loaded module as OS.kmod.<name>: true.
func kernelModules(s *recipes.Snapshot, root string) {
	data, err := os.ReadFile(filepath.Join(root, "proc/modules"))
	if err != nil {
		s.MarkUnreadable("OS.kmod", err.Error())
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		if name, _, _ := strings.Cut(line, " "); name != "" {
			s.Set("OS", "kmod", name, true)
		}
	}
}

// commandLine records the kernel command line as OS.grub, key=value (a bare
// flag has the empty value), as AICR does.
func commandLine(s *recipes.Snapshot, root string) {
	data, err := os.ReadFile(filepath.Join(root, "proc/cmdline"))
	if err != nil {
		s.MarkUnreadable("OS.grub", err.Error())
		return
	}
	for _, f := range strings.Fields(string(data)) {
		k, v, _ := strings.Cut(f, "=")
		s.Set("OS", "grub", k, v)
	}
}

// architectures names a compute capability's major version as nvidia-smi's
// "Product Architecture" does.
var architectures = map[string]string{
	"6": "Pascal", "7": "Volta", "8": "Ampere", "9": "Hopper", "10": "Blackwell", "12": "Blackwell",
}

func architecture(cc string) string {
	if cc == "8.9" {
		return "Ada Lovelace"
	}
	if cc == "7.5" {
		return "Turing"
	}
	major, _, _ := strings.Cut(cc, ".")
	return architectures[major]
}

// gpus records GPU.smi with the keys AICR's nvidia-smi reader uses.
func gpus(s *recipes.Snapshot, opts gpu.DiscoverOptions) {
	inv, err := discoverGPUs(opts)
	if err != nil {
		s.MarkUnreadable("GPU.smi", err.Error())
		return
	}
	if inv.Source == gpu.SourceNone {
		reason := inv.Note
		if reason == "" {
			reason = "no NVIDIA driver found"
		}
		s.MarkUnreadable("GPU.smi", reason)
		return
	}
	s.Set("GPU", "smi", "gpu-count", len(inv.GPUs))
	if inv.DriverVersion != "" {
		s.Set("GPU", "smi", "driver", inv.DriverVersion)
	} else {
		s.MarkUnreadable("GPU.smi.driver", "driver version not reported")
	}
	if inv.CUDAVersion != "" {
		s.Set("GPU", "smi", "cuda-version", inv.CUDAVersion)
	} else {
		s.MarkUnreadable("GPU.smi.cuda-version", "unknown for driver "+inv.DriverVersion)
	}
	if len(inv.GPUs) == 0 {
		return
	}
	// AICR records one model per node; a node mixing models lists them all.
	models := map[string]bool{}
	mig := false
	for _, g := range inv.GPUs {
		models[g.Name] = true
		mig = mig || g.MIGEnabled
	}
	names := make([]string, 0, len(models))
	for m := range models {
		names = append(names, m)
	}
	sort.Strings(names)
	s.Set("GPU", "smi", "gpu.model", strings.Join(names, ", "))
	first := inv.GPUs[0]
	if first.ComputeCapability != "" {
		s.Set("GPU", "smi", "gpu.compute-capability", first.ComputeCapability)
		if a := architecture(first.ComputeCapability); a != "" {
			s.Set("GPU", "smi", "gpu.product-architecture", a)
		}
	}
	if first.MemoryBytes > 0 {
		s.Set("GPU", "smi", "gpu.memory-mib", first.MemoryBytes>>20)
	}
	migMode := "Disabled"
	if mig {
		migMode = "Enabled"
	}
	s.Set("GPU", "smi", "gpu.mig-mode", migMode)
	s.Set("GPU", "smi", "discovery", string(inv.Source))
}

// containerEngines records Engine.<name> for docker, containerd, podman and
// crio, and NVBind.runtime: whether any of them runs nvbind.
func containerEngines(s *recipes.Snapshot, version string) {
	var registered []string
	for _, e := range detectEngines() {
		s.Set("Engine", e.Name, "installed", e.Installed)
		if e.Version != "" {
			s.Set("Engine", e.Name, "version", e.Version)
		}
		if e.ConfigPath != "" {
			s.Set("Engine", e.Name, "config", e.ConfigPath)
		}
		if e.Error != "" {
			s.MarkUnreadable("Engine."+e.Name+".nvbind-registered", e.Error)
			continue
		}
		s.Set("Engine", e.Name, "nvbind-registered", e.Registered)
		if e.Registered {
			registered = append(registered, e.Name)
		}
	}
	s.Set("NVBind", "runtime", "registered", len(registered) > 0)
	s.Set("NVBind", "runtime", "engines", strings.Join(registered, ","))
	if version != "" {
		s.Set("NVBind", "runtime", "version", version)
	}
}
