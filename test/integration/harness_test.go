// Package integration drives the built nvbind binaries against real runc
// (and real engines) with simulated GPU driver roots. The tests need root;
// with CI=true a missing prerequisite fails them instead of skipping.
package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/specconv"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// bins are the binaries under test, built once by TestMain.
var bins struct{ CLI, Runtime, Hook string }

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "nvbind-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, b := range []struct {
		dst *string
		pkg string
	}{{&bins.CLI, "nvbind"}, {&bins.Runtime, "nvbind-runtime"}, {&bins.Hook, "nvbind-hook"}} {
		*b.dst = filepath.Join(dir, b.pkg)
		cmd := exec.Command("go", "build", "-o", *b.dst, "./cmd/"+b.pkg)
		cmd.Dir = root
		// As `make build`: static runtime and hook, cgo (NVML) for the CLI.
		cgo := "CGO_ENABLED=0"
		if b.pkg == "nvbind" {
			cgo = "CGO_ENABLED=1"
		}
		cmd.Env = append(os.Environ(), cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// inCI reports CI=true: prerequisites must then be present, never skipped.
func inCI() bool { return os.Getenv("CI") == "true" }

// requireRoot skips (or, in CI, fails) a test that needs root and runc.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "root")
	}
	requireTool(t, "runc")
}

// requireTool skips (or, in CI, fails) a test when a program is missing.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name)
	}
	return p
}

func missing(t *testing.T, what string) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s is required (CI=true): run 'make deps'", what)
	}
	t.Skipf("%s not available", what)
}

// Bundle is an OCI bundle with a busybox rootfs.
type Bundle struct {
	Dir  string
	Spec *rspec.Spec
}

// Rootfs is the bundle's root filesystem directory.
func (b *Bundle) Rootfs() string { return filepath.Join(b.Dir, "rootfs") }

// ConfigPath is the bundle's config.json.
func (b *Bundle) ConfigPath() string { return filepath.Join(b.Dir, "config.json") }

// Save writes b.Spec to config.json.
func (b *Bundle) Save(t *testing.T) {
	t.Helper()
	data, err := json.MarshalIndent(b.Spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.ConfigPath(), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ReadConfig returns config.json's bytes.
func (b *Bundle) ReadConfig(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(b.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// SetEnv appends NAME=value entries to the process env.
func (b *Bundle) SetEnv(env ...string) { b.Spec.Process.Env = append(b.Spec.Process.Env, env...) }

// newBundle makes a bundle running args in a busybox rootfs, with a spec
// from runc's own specconv.Example(). The spec is saved; edit b.Spec and
// call Save again to change it.
func newBundle(t *testing.T, args ...string) *Bundle {
	t.Helper()
	busybox := requireTool(t, "busybox")
	dir := t.TempDir()
	b := &Bundle{Dir: dir, Spec: specconv.Example()}
	makeBusyboxRootfs(t, busybox, b.Rootfs())
	b.Spec.Root.Readonly = false
	b.Spec.Process.Terminal = false
	b.Spec.Process.Args = args
	b.Spec.Hostname = "nvbind-test"
	b.Save(t)
	return b
}

// makeBusyboxRootfs copies the static busybox into dir and links its
// applets, the way busybox --install would.
func makeBusyboxRootfs(t *testing.T, busybox, dir string) {
	t.Helper()
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "lib", "usr/lib", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		os.Symlink("busybox", filepath.Join(dir, "bin", applet))
	}
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\n"), 0o644)
}

// SimRoot is a simulated driver root with a CDI spec dir and an nvbind
// config that points at both.
type SimRoot struct {
	Dir     string // the driver root
	SpecDir string // CDI spec dir
	Config  string // nvbind config.toml
	RunRoot string // runc --root for containers of this test
	GPUs    int
	UUIDs   []string
	// JITSpec is the config's cdi.jit-spec ("" turns just-in-time specs off).
	JITSpec string
	// Inventory is the config's driver.inventory ("" for none).
	Inventory string
	// Ledger is the config's ledger.dir (a temp dir, never /run).
	Ledger string
	// HookProcess sets hook.in-runtime = false: runc starts nvbind-hook
	// for the hook's work instead of nvbind-runtime doing it first.
	HookProcess bool
}

// newSimRootDirs lays out a SimRoot for n GPUs in a fresh temporary
// folder: the CDI spec dir and runc's root are made, the driver root is
// left to the caller.
func newSimRootDirs(t *testing.T, n int) *SimRoot {
	t.Helper()
	base := t.TempDir()
	s := &SimRoot{
		Dir:     filepath.Join(base, "driver"),
		SpecDir: filepath.Join(base, "cdi"),
		Config:  filepath.Join(base, "config.toml"),
		RunRoot: filepath.Join(base, "runc"),
		Ledger:  filepath.Join(base, "ledger"),
		GPUs:    n,
	}
	for _, d := range []string{s.SpecDir, s.RunRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// newSimRoot makes a simulated driver root with n GPUs, a CDI spec for them
// and an nvbind config using runc.
func newSimRoot(t *testing.T, n int) *SimRoot {
	t.Helper()
	s := newSimRootDirs(t, n)
	for _, d := range []string{s.Dir + "/dev", s.Dir + "/proc/driver/nvidia"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mknod := func(name string, major, minor uint32) {
		if err := unix.Mknod(filepath.Join(s.Dir, "dev", name), unix.S_IFCHR|0o666, int(unix.Mkdev(major, minor))); err != nil {
			t.Fatalf("mknod %s: %v", name, err)
		}
	}
	for i := 0; i < n; i++ {
		mknod(fmt.Sprintf("nvidia%d", i), 195, uint32(i))
		s.UUIDs = append(s.UUIDs, fmt.Sprintf("GPU-%08x-1111-2222-3333-4444%08x", i+1, i+1))
	}
	mknod("nvidiactl", 195, 255)
	mknod("nvidia-uvm", 510, 0)
	os.WriteFile(filepath.Join(s.Dir, "proc/driver/nvidia/version"),
		[]byte("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05  Tue Sep 23 09:58:26 UTC 2025\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"), 0o444)
	s.writeSpec(t)
	s.WriteConfig(t, "")
	return s
}

// writeSpec writes the CDI spec fixture: one device per GPU by index and
// UUID, "all", and "driver" (no GPU nodes).
func (s *SimRoot) writeSpec(t *testing.T) {
	t.Helper()
	type node struct {
		Path     string `json:"path"`
		HostPath string `json:"hostPath"`
	}
	type edits struct {
		Env         []string `json:"env,omitempty"`
		DeviceNodes []node   `json:"deviceNodes,omitempty"`
	}
	type device struct {
		Name           string `json:"name"`
		ContainerEdits edits  `json:"containerEdits"`
	}
	gpuNode := func(i int) node {
		return node{Path: fmt.Sprintf("/dev/nvidia%d", i), HostPath: filepath.Join(s.Dir, fmt.Sprintf("dev/nvidia%d", i))}
	}
	var devices []device
	var all []node
	for i := 0; i < s.GPUs; i++ {
		devices = append(devices,
			device{Name: fmt.Sprint(i), ContainerEdits: edits{DeviceNodes: []node{gpuNode(i)}}},
			device{Name: s.UUIDs[i], ContainerEdits: edits{DeviceNodes: []node{gpuNode(i)}}})
		all = append(all, gpuNode(i))
	}
	devices = append(devices,
		device{Name: "all", ContainerEdits: edits{DeviceNodes: all}},
		device{Name: "driver", ContainerEdits: edits{Env: []string{"NVBIND_DRIVER_ONLY=1"}}})
	spec := map[string]any{
		"cdiVersion": "0.5.0",
		"kind":       "nvidia.com/gpu",
		"devices":    devices,
		"containerEdits": edits{
			Env: []string{"NVIDIA_DRIVER_FIXTURE=1"},
			DeviceNodes: []node{
				{Path: "/dev/nvidiactl", HostPath: filepath.Join(s.Dir, "dev/nvidiactl")},
				{Path: "/dev/nvidia-uvm", HostPath: filepath.Join(s.Dir, "dev/nvidia-uvm")},
			},
		},
	}
	data, _ := json.MarshalIndent(spec, "", "  ")
	if err := os.WriteFile(filepath.Join(s.SpecDir, "nvidia.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// WriteConfig writes the nvbind config for this root; extra is appended
// verbatim (for example a [profiles.x] table).
func (s *SimRoot) WriteConfig(t *testing.T, extra string) {
	t.Helper()
	cfg := fmt.Sprintf(`[runtime]
runtimes = ["runc"]
log-file = %q
log-level = "debug"
state-dir = %q

[cdi]
spec-dirs = [%q]
jit-spec = %q

[driver]
root = %q
inventory = %q

[hook]
path = %q
in-runtime = %t

[ledger]
dir = %q
`, s.LogFile(), filepath.Join(filepath.Dir(s.Config), "state"), s.SpecDir, s.JITSpec, s.Dir, s.Inventory, bins.Hook, !s.HookProcess, s.Ledger)
	if err := os.WriteFile(s.Config, []byte(cfg+extra), 0o644); err != nil {
		t.Fatal(err)
	}
}

// LogFile is nvbind's own log file for this root.
func (s *SimRoot) LogFile() string { return filepath.Join(filepath.Dir(s.Config), "nvbind.log") }

// Env is the environment that points nvbind at this root's config.
func (s *SimRoot) Env() []string { return []string{"NVBIND_CONFIG=" + s.Config} }

// Result is what a command printed and how it exited.
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
}

// runCmd runs a program with extra env and captures its output. Output
// goes through files, not pipes: a container started by `create` inherits
// them and would otherwise keep the call from returning.
func runCmd(t *testing.T, env []string, name string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, stderr := tempOutput(t), tempOutput(t)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	res := Result{Stdout: readBack(t, stdout), Stderr: readBack(t, stderr)}
	if ee, ok := err.(*exec.ExitError); ok {
		res.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", name, err)
	}
	return res
}

func tempOutput(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readBack(t *testing.T, f *os.File) string {
	t.Helper()
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// runRuntime runs nvbind-runtime with args.
func runRuntime(t *testing.T, env []string, args ...string) Result {
	t.Helper()
	return runCmd(t, env, bins.Runtime, args...)
}

var containerSeq atomic.Int64

// runContainer runs the bundle's process to completion through
// nvbind-runtime on real runc (`run`, not detached) and always deletes the
// container afterwards.
func runContainer(t *testing.T, s *SimRoot, b *Bundle) Result {
	t.Helper()
	id := fmt.Sprintf("nvbind-it-%d-%d", os.Getpid(), containerSeq.Add(1))
	t.Cleanup(func() { exec.Command("runc", "--root", s.RunRoot, "delete", "--force", id).Run() })
	return runRuntime(t, s.Env(), "--root", s.RunRoot, "--log", filepath.Join(b.Dir, "runc.log"),
		"--log-format", "json", "run", "--bundle", b.Dir, id)
}

// containers lists the containers runc knows under root.
func containers(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command("runc", "--root", root, "list", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("runc list: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// decodeSpec parses a config.json.
func decodeSpec(t *testing.T, data []byte) *rspec.Spec {
	t.Helper()
	var s rspec.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("decode spec: %v", err)
	}
	return &s
}
