package gpu

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/nvbind/nvbind/internal/plainfile"
)

// procfs.go reads what the kernel module publishes under /proc: the driver
// version, one information file per GPU and the MIG capability files. It is
// the discovery path that needs no NVML, and the only one the runtime's hot
// path uses.

// ErrNoDriver means no NVIDIA kernel module is loaded under the root.
var ErrNoDriver = errors.New("no NVIDIA driver loaded")

// versionFile is where the kernel module reports its version.
const versionFile = "proc/driver/nvidia/version"

// ReadDriverVersion returns the version of the loaded NVIDIA kernel module
// from <root>/proc/driver/nvidia/version (one small read, no NVML). The
// error wraps ErrNoDriver when the file does not exist. On WSL2 it returns
// the Windows driver's identity ("wsl-<driver store>", see wsl.go).
func ReadDriverVersion(root string) (string, error) {
	p := filepath.Join(procRoot(root), versionFile)
	data, err := plainfile.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		// WSL2 has no NVIDIA kernel module: its driver is named by the
		// Windows driver store (wsl.go).
		if v, isWSL, werr := wslDriverIdentity(root); isWSL {
			return v, werr
		}
		return "", fmt.Errorf("%w (%s not found)", ErrNoDriver, p)
	}
	if err != nil {
		return "", fmt.Errorf("read driver version: %w", err)
	}
	v, err := parseNVRMVersion(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return v, nil
}

// parseNVRMVersion finds the version in the "NVRM version:" line, e.g.
// "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb ..."
// or "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.95.05 ...":
// the first field made of digits and dots with at least one dot.
func parseNVRMVersion(data []byte) (string, error) {
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "NVRM version:")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(rest) {
			if isDottedVersion(f) {
				return f, nil
			}
		}
		return "", fmt.Errorf("no version in %q", strings.TrimSpace(line))
	}
	return "", errors.New("no NVRM version line")
}

func isDottedVersion(s string) bool {
	if !strings.Contains(s, ".") || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for _, c := range s {
		if c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// procRoot is where /proc is read for root: the root's own proc when it has
// the driver files (a simulated root), else the host's (a driver container
// root such as /run/nvidia/driver has no /proc of its own).
func procRoot(root string) string {
	if root == "" || root == "/" {
		return "/"
	}
	if _, err := os.Stat(filepath.Join(root, "proc/driver/nvidia")); err == nil {
		return root
	}
	return "/"
}

// devRoot is where device nodes are looked up for root, by the same rule.
func devRoot(root string) string {
	if root == "" || root == "/" {
		return "/"
	}
	if _, err := os.Stat(filepath.Join(root, "dev/nvidiactl")); err == nil {
		return root
	}
	return "/"
}

// discoverProcfs builds an Inventory from procfs alone. GPUs are indexed in
// PCI bus order, the order NVML and CUDA (CUDA_DEVICE_ORDER=PCI_BUS_ID) use.
// MIG devices are found through the capability files; their UUIDs are not
// published there, so they stay empty.
func discoverProcfs(root string) (*Inventory, error) {
	version, err := ReadDriverVersion(root)
	if err != nil {
		return nil, err
	}
	inv := &Inventory{Source: SourceProcfs, DriverRoot: root, DriverVersion: version, CUDAVersion: CUDAVersionForDriver(version)}
	proc := procRoot(root)
	dir := filepath.Join(proc, "proc/driver/nvidia/gpus")
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list GPUs: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name(), "information")
		data, err := plainfile.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read GPU information: %w", err)
		}
		g, err := parseInformation(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if g.BusID == "" {
			g.BusID = strings.ToLower(e.Name())
		}
		inv.GPUs = append(inv.GPUs, g)
	}
	sort.Slice(inv.GPUs, func(i, j int) bool { return inv.GPUs[i].BusID < inv.GPUs[j].BusID })
	for i := range inv.GPUs {
		g := &inv.GPUs[i]
		g.Index = i
		g.MIGDevices = procfsMIG(proc, g.Minor)
		g.MIGEnabled = len(g.MIGDevices) > 0
	}
	return inv, nil
}

// parseInformation reads one proc/driver/nvidia/gpus/<bus>/information file
// ("Key: \t value" lines).
func parseInformation(data []byte) (GPU, error) {
	g := GPU{Minor: -1}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "Model":
			g.Name = v
			g.ComputeCapability = ArchForModel(v)
			g.Brand = BrandForModel(v)
		case "GPU UUID":
			g.UUID = v
		case "Bus Location":
			g.BusID = strings.ToLower(v)
		case "Device Minor":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 254 {
				return g, fmt.Errorf("bad Device Minor %q", v)
			}
			g.Minor = n
		}
	}
	if g.Minor < 0 {
		return g, errors.New("no Device Minor")
	}
	return g, nil
}

// procfsMIG lists a GPU's MIG devices from
// proc/driver/nvidia/capabilities/gpu<minor>/mig/gi<G>/ci<C>/access.
func procfsMIG(proc string, minor int) []MIG {
	base := filepath.Join(proc, fmt.Sprintf("proc/driver/nvidia/capabilities/gpu%d/mig", minor))
	gis, err := os.ReadDir(base)
	if err != nil {
		return nil
	}
	var migs []MIG
	for _, gi := range gis {
		giID, ok := idAfter(gi.Name(), "gi")
		if !ok {
			continue
		}
		cis, err := os.ReadDir(filepath.Join(base, gi.Name()))
		if err != nil {
			continue
		}
		for _, ci := range cis {
			if ciID, ok := idAfter(ci.Name(), "ci"); ok {
				migs = append(migs, MIG{GIID: giID, CIID: ciID})
			}
		}
	}
	sort.Slice(migs, func(i, j int) bool {
		if migs[i].GIID != migs[j].GIID {
			return migs[i].GIID < migs[j].GIID
		}
		return migs[i].CIID < migs[j].CIID
	})
	for i := range migs {
		migs[i].Index = i
	}
	return migs
}

func idAfter(name, prefix string) (int, bool) {
	s, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// migMinors reads proc/driver/nvidia-caps/mig-minors: "gpu0/gi1/ci0/access 13"
// lines mapping each MIG capability to its nvidia-caps device minor.
func migMinors(proc string) map[string]int {
	data, err := os.ReadFile(filepath.Join(proc, "proc/driver/nvidia-caps/mig-minors"))
	if err != nil {
		return nil
	}
	m := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if n, err := strconv.Atoi(f[1]); err == nil {
			m[f[0]] = n
		}
	}
	return m
}
