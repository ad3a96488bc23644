package engines

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

// doctorFixture returns options for a host with nvbind installed, runc-like
// runtime present, and no engines.
func doctorFixture(t *testing.T) DoctorOptions {
	t.Helper()
	dir := t.TempDir()
	exe := func(name string) string {
		p := filepath.Join(dir, "bin", name)
		writeFile(t, p, "#!/bin/sh\n")
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := config.Default()
	cfg.Runtime.Runtimes = []string{exe("lowlevel")}
	cfg.Hook.Path = exe("nvbind-hook")
	cfg.CDI.SpecDirs = []string{filepath.Join(dir, "cdi")}
	if err := os.MkdirAll(cfg.CDI.SpecDirs[0], 0o755); err != nil {
		t.Fatal(err)
	}
	sys := filepath.Join(dir, "sys")
	if err := os.MkdirAll(filepath.Join(sys, "sys/bus/pci/devices"), 0o755); err != nil {
		t.Fatal(err)
	}
	return DoctorOptions{
		Config:      cfg,
		DriverRoot:  filepath.Join(dir, "no-driver"),
		RuntimePath: exe("nvbind-runtime"),
		Engines:     []Engine{},
		SysRoot:     sys,
	}
}

func checkOf(t *testing.T, r *Report, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, r.Checks)
	return Check{}
}

func TestDoctorNoGPU(t *testing.T) {
	opts := doctorFixture(t)
	r := Doctor(opts)
	if r.Failed() {
		t.Fatalf("a machine without a GPU fails: %+v", r.Checks)
	}
	c := checkOf(t, r, "driver")
	if c.Status != Warn || !strings.Contains(c.Message, "no NVIDIA GPU") {
		t.Errorf("driver check: %+v", c)
	}
	for _, name := range []string{"device-nodes", "cdi-spec", "persistence", "rootless"} {
		if c := checkOf(t, r, name); c.Status != Skip {
			t.Errorf("%s: %+v, want skip", name, c)
		}
	}
	if c := checkOf(t, r, "engines"); c.Status != Warn {
		t.Errorf("engines: %+v", c)
	}
}

func TestDoctorGPUPresentWithoutDriver(t *testing.T) {
	opts := doctorFixture(t)
	dev := filepath.Join(opts.SysRoot, "sys/bus/pci/devices/0000:07:00.0")
	writeFile(t, filepath.Join(dev, "vendor"), "0x10de\n")
	writeFile(t, filepath.Join(dev, "class"), "0x030200\n")
	r := Doctor(opts)
	c := checkOf(t, r, "driver")
	if c.Status != Fail || !strings.Contains(c.Message, "0000:07:00.0") || c.Fix == "" {
		t.Errorf("driver check: %+v", c)
	}
	if !r.Failed() {
		t.Error("report does not fail")
	}
}

func TestDoctorMissingBinariesAndBadConfig(t *testing.T) {
	opts := doctorFixture(t)
	opts.RuntimePath = "/nonexistent/nvbind-runtime"
	opts.Config.Runtime.Runtimes = []string{"/nonexistent/runc"}
	opts.ConfigError = fmt.Errorf("config /etc/nvbind/config.toml:3: unknown key \"x\"")
	r := Doctor(opts)
	for _, name := range []string{"config", "nvbind-runtime", "low-level-runtime"} {
		if c := checkOf(t, r, name); c.Status != Fail || c.Fix == "" {
			t.Errorf("%s: %+v, want fail with a fix", name, c)
		}
	}
}

func TestDoctorEngines(t *testing.T) {
	opts := doctorFixture(t)
	opts.Engines = []Engine{
		{Name: Docker, Installed: true, Version: "20.10.24", ConfigPath: "/etc/docker/daemon.json", Registered: true, RuntimePath: opts.RuntimePath},
		{Name: Containerd, Installed: true, ConfigPath: "/etc/containerd/config.toml"},
		{Name: Podman, Installed: true, Registered: true, RuntimePath: "/gone/nvbind-runtime"},
		{Name: CRIO, Installed: true, Error: "/etc/crio/crio.conf: cannot parse"},
	}
	r := Doctor(opts)
	want := map[string]Status{"engine-docker": Pass, "engine-containerd": Warn, "engine-podman": Fail, "engine-crio": Fail}
	for name, s := range want {
		if c := checkOf(t, r, name); c.Status != s {
			t.Errorf("%s: %+v, want %s", name, c, s)
		}
	}
	if c := checkOf(t, r, "engine-containerd"); !strings.Contains(c.Fix, "nvbind runtime configure --runtime containerd") {
		t.Errorf("containerd fix: %q", c.Fix)
	}
}

func TestDoctorSimulatedDriver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("simulated device nodes need root")
	}
	opts := doctorFixture(t)
	root, err := simroot.Build(filepath.Join(t.TempDir(), "driver"), simroot.Options{GPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	opts.DriverRoot = root.Dir

	r := Doctor(opts)
	want := map[string]Status{"driver": Pass, "device-nodes": Pass, "nvml": Skip, "cdi-spec": Warn, "persistence": Pass, "rootless": Pass, "cgroups": Pass}
	for name, s := range want {
		if c := checkOf(t, r, name); c.Status != s {
			t.Errorf("%s: %+v, want %s", name, c, s)
		}
	}
	if c := checkOf(t, r, "driver"); !strings.Contains(c.Message, root.DriverVersion) || !strings.Contains(c.Message, "2 GPUs") {
		t.Errorf("driver: %+v", c)
	}

	// A stale spec (its library is gone), closed device permissions, no
	// persistenced, and systemd without /dev/char links.
	spec := `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"0","containerEdits":{"deviceNodes":[{"path":"/dev/nvidia0","hostPath":"` + root.Dir + `/dev/nvidia0"}]}}],
"containerEdits":{"mounts":[{"hostPath":"` + root.Dir + `/usr/lib/x86_64-linux-gnu/libcuda.so.1.2.3","containerPath":"/usr/lib/libcuda.so.1.2.3","options":["ro","bind"]}]}}`
	writeFile(t, filepath.Join(opts.Config.CDI.SpecDirs[0], "nvidia.json"), spec)
	if err := os.Chmod(filepath.Join(root.Dir, "dev/nvidia1"), 0o660); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root.Dir, "run/nvidia-persistenced/socket")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(opts.SysRoot, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	r = Doctor(opts)
	want = map[string]Status{"cdi-spec": Fail, "rootless": Warn, "persistence": Warn, "cgroups": Warn}
	for name, s := range want {
		c := checkOf(t, r, name)
		if c.Status != s || c.Fix == "" {
			t.Errorf("%s: %+v, want %s with a fix", name, c, s)
		}
	}
	if c := checkOf(t, r, "cdi-spec"); !strings.Contains(c.Message, "libcuda.so.1.2.3") {
		t.Errorf("cdi-spec does not name the missing file: %s", c.Message)
	}
	if c := checkOf(t, r, "rootless"); !strings.Contains(c.Message, "/dev/nvidia1 (0660") {
		t.Errorf("rootless: %s", c.Message)
	}
	if c := checkOf(t, r, "cgroups"); !strings.Contains(c.Message, "/dev/char/195:0") {
		t.Errorf("cgroups: %s", c.Message)
	}

	// A spec nvbind made for another driver version.
	spec = `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"0","containerEdits":{"deviceNodes":[{"path":"/dev/nvidia0","hostPath":"` + root.Dir + `/dev/nvidia0"}]}}],
"containerEdits":{"env":["` + gpu.DriverVersionEnv + `=535.1.2"]}}`
	writeFile(t, filepath.Join(opts.Config.CDI.SpecDirs[0], "nvidia.json"), spec)
	r = Doctor(opts)
	if c := checkOf(t, r, "cdi-spec"); c.Status != Fail || !strings.Contains(c.Message, "535.1.2") || !strings.Contains(c.Message, root.DriverVersion) {
		t.Errorf("cdi-spec for an old driver: %+v", c)
	}
	spec = strings.Replace(spec, "535.1.2", root.DriverVersion, 1)
	writeFile(t, filepath.Join(opts.Config.CDI.SpecDirs[0], "nvidia.json"), spec)
	r = Doctor(opts)
	if c := checkOf(t, r, "cdi-spec"); c.Status != Pass {
		t.Errorf("cdi-spec for the loaded driver: %+v", c)
	}

	// Missing device node.
	if err := os.Remove(filepath.Join(root.Dir, "dev/nvidia0")); err != nil {
		t.Fatal(err)
	}
	r = Doctor(opts)
	if c := checkOf(t, r, "device-nodes"); c.Status != Fail || !strings.Contains(c.Message, "/dev/nvidia0 missing") {
		t.Errorf("device-nodes: %+v", c)
	}
}

func TestReportJSON(t *testing.T) {
	r := Doctor(doctorFixture(t))
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Checks []struct {
			Name, Status, Message, Fix string
		}
		Summary map[string]int
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Checks) != len(r.Checks) || back.Summary["warn"] != r.Summary[Warn] {
		t.Errorf("JSON round trip: %s", data)
	}
}
