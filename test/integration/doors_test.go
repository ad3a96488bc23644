package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

// These tests drive nvbind's hook doors: nvbind-hook precreate (Podman's
// hooks.d), nvbind-hook prestart (raw runc, CRI-O) and the same binary as
// nvidia-container-runtime-hook (docker run --gpus), each on the engine's
// own runtime, with a simulated driver root.

// precreate runs `nvbind-hook precreate` with spec on stdin.
func precreate(t *testing.T, env []string, spec []byte, args ...string) Result {
	t.Helper()
	cmd := exec.Command(bins.Hook, append([]string{"precreate"}, args...)...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(spec)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestPrecreateSameEditsAsRuntime: the precreate door writes exactly the
// config.json nvbind-runtime writes into the bundle for the same spec, and
// gives a spec without a request back byte for byte.
func TestPrecreateSameEditsAsRuntime(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 2)
	b := newBundle(t, "true")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=1")
	b.Spec.Annotations = map[string]string{"nvbind.io/profile": "ml"}
	b.Save(t)
	orig := b.ReadConfig(t)

	res := precreate(t, nil, orig, "--config", s.Config)
	if res.Code != 0 || res.Stderr != "" {
		t.Fatalf("precreate: %s", res)
	}
	// nvbind-runtime with /bin/true as the low-level runtime: it edits the
	// bundle and hands off.
	cfg, _ := os.ReadFile(s.Config)
	trueCfg := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(trueCfg, bytes.Replace(cfg, []byte(`runtimes = ["runc"]`), []byte(`runtimes = ["true"]`), 1), 0o644)
	if r := runRuntime(t, []string{"NVBIND_CONFIG=" + trueCfg}, "create", "--bundle", b.Dir, "c1"); r.Code != 0 {
		t.Fatalf("nvbind-runtime create: %s", r)
	}
	if got := b.ReadConfig(t); string(got) != res.Stdout {
		t.Errorf("precreate and nvbind-runtime disagree:\nprecreate: %s\nruntime:   %s", res.Stdout, got)
	}
	spec := decodeSpec(t, []byte(res.Stdout))
	if !strings.Contains(strings.Join(spec.Process.Env, " "), "CUDA_DEVICE_ORDER=PCI_BUS_ID") {
		t.Errorf("precreate: no profile env: %v", spec.Process.Env)
	}

	// No request: the input back byte for byte, odd formatting and unknown
	// keys included.
	plain := []byte("{\"ociVersion\": \"1.2.0\",  \"x-engine\": {\"b\":1, \"a\":[2]},\n \"process\": {\"env\": [\"PATH=/bin\"]}}\n")
	if r := precreate(t, nil, plain, "--config", s.Config); r.Code != 0 || r.Stdout != string(plain) {
		t.Errorf("precreate without a request changed the spec: %s", r)
	}
	// A bad request: one line, non-zero, nothing on stdout.
	bad := bytes.Replace(orig, []byte("NVIDIA_VISIBLE_DEVICES=1"), []byte("NVIDIA_VISIBLE_DEVICES=7"), 1)
	if r := precreate(t, nil, bad, "--config", s.Config); r.Code != 1 || r.Stdout != "" || strings.Count(r.Stderr, "\n") != 1 || !strings.Contains(r.Stderr, "nvbind-hook: precreate:") {
		t.Errorf("precreate with a GPU that does not exist: %s", r)
	}
	// NVBIND_CONFIG from the caller's environment is honoured, though the
	// hook drops its environment.
	if r := precreate(t, []string{"NVBIND_CONFIG=" + s.Config}, orig); r.Code != 0 || r.Stdout != res.Stdout {
		t.Errorf("precreate with NVBIND_CONFIG: %s", r)
	}
}

// TestPrecreatePassthroughInit: a precreate call without a request is
// answered while nvbind-hook initialises, before the packages only the GPU
// path needs run their init (cmd/nvbind-hook/internal/passthrough): Podman
// runs the hook for every container. GODEBUG=inittrace=1 lists each
// package initialised; the order is the linker's, so this needs the built
// program.
func TestPrecreatePassthroughInit(t *testing.T) {
	spec := []byte(`{"ociVersion":"1.2.0","process":{"env":["PATH=/bin"]}}`)
	r := precreate(t, []string{"GODEBUG=inittrace=1"}, spec, "--config", "/nonexistent/config.toml")
	if r.Code != 0 || r.Stdout != string(spec) {
		t.Fatalf("precreate without a request: %s", r)
	}
	if !strings.Contains(r.Stderr, "init os @") {
		t.Fatalf("no init trace: %s", r.Stderr)
	}
	// It reads config.toml (a [policy] table may add annotation prefixes
	// that ask for GPUs) with the light config reader only.
	heavy := []string{"github.com/nvbind/nvbind/internal/", "go.yaml.in/yaml", "tags.cncf.io/", "github.com/godbus/dbus",
		"github.com/opencontainers/cgroups", "github.com/sirupsen/logrus", "golang.org/x/sys/unix", "encoding/json", "regexp"}
	light := map[string]bool{"github.com/nvbind/nvbind/internal/handoff": true, "github.com/nvbind/nvbind/internal/configcore": true,
		"github.com/nvbind/nvbind/internal/ldcache": true}
	for _, line := range strings.Split(r.Stderr, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "init" || light[f[1]] {
			continue
		}
		for _, pkg := range heavy {
			if strings.HasPrefix(f[1], pkg) {
				t.Errorf("%s initialised before the passthrough answered:\n%s", f[1], r.Stderr)
			}
		}
	}
}

// TestPrecreateRootlessUnreadableSpec: run as an unprivileged user, the
// hook writes no just-in-time spec and names an unreadable spec.
func TestPrecreateRootlessUnreadableSpec(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 1)
	// A world-readable place for what the unprivileged hook reads.
	dir, err := os.MkdirTemp("", "nvb-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	specDir, jit := filepath.Join(dir, "cdi"), filepath.Join(dir, "jit", "nvidia.json")
	os.MkdirAll(specDir, 0o755)
	os.MkdirAll(filepath.Dir(jit), 0o777)
	spec := filepath.Join(specDir, "nvidia.yaml")
	data, _ := os.ReadFile(filepath.Join(s.SpecDir, "nvidia.yaml"))
	os.WriteFile(spec, data, 0o600)
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[cdi]\nspec-dirs = [%q]\njit-spec = %q\n[driver]\nroot = %q\n", specDir, jit, s.Dir)), 0o644)
	hookBin := filepath.Join(dir, "nvbind-hook")
	bin, _ := os.ReadFile(bins.Hook)
	os.WriteFile(hookBin, bin, 0o755)

	b := newBundle(t, "true")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0")
	b.Save(t)
	cmd := exec.Command(hookBin, "precreate", "--config", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Stdin = bytes.NewReader(b.ReadConfig(t))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "CDI spec "+spec+" is not readable by uid 65534") || strings.Count(string(out), "\n") != 1 {
		t.Errorf("rootless precreate with an unreadable spec: %v: %s", err, out)
	}
	if _, err := os.Stat(jit); err == nil {
		t.Errorf("rootless precreate wrote %s", jit)
	}
}

func TestPodmanPrecreateHook(t *testing.T) {
	requireRoot(t)
	requireTool(t, "podman")
	requireTool(t, "conmon")
	s := newGeneratedSimRoot(t, 4)
	dir := shortTempDir(t, "nvb-pmhook-")
	conf := filepath.Join(dir, "containers.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[containers]\ndefault_ulimits = [%q, %q]\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n", ulimitNofile, ulimitNproc)), 0o644)
	hooksDir := filepath.Join(dir, "hooks.d")
	hookFile := filepath.Join(hooksDir, "nvbind.json")
	configure := func(verb string) Result {
		args := []string{"runtime", verb, "--runtime", "podman", "--mode", "hook", "--config", hookFile}
		if verb == "configure" {
			args = append(args, "--path", bins.Hook)
		}
		return nvbindCLI(t, s.Env(), args...)
	}
	if r := configure("configure"); r.Code != 0 || !strings.Contains(r.Stdout, "podman: wrote "+hookFile) {
		t.Fatalf("configure --mode hook: %s", r)
	}
	fileContains(t, hookFile, `"precreate"`, `"always": true`, bins.Hook, "NVBIND_CONFIG="+s.Config)
	if r := configure("configure"); r.Code != 0 || !strings.Contains(r.Stdout, "nothing changed") {
		t.Errorf("second configure: %s", r)
	}

	p := newPrivatePodman(t, dir, conf, "--hooks-dir", hooksDir)
	run := p.Run
	const look = "ls /dev; grep -q libcuda.so.1 /etc/ld.so.cache && echo ldcache=yes; echo link=$(readlink " + driverLibDir + "/libcuda.so.1); env"
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"NVIDIA_VISIBLE_DEVICES=0", []string{"-e", "NVIDIA_VISIBLE_DEVICES=0"}, []string{"nvidia0"}},
		{"CDI annotation", []string{"--annotation", "cdi.k8s.io/test=nvidia.com/gpu=2", "--annotation", "nvbind.io/profile=ml"}, []string{"nvidia2"}},
	} {
		res := run(append(tt.args, "localhost/nvbind-busybox:test", "sh", "-c", look)...)
		wantGPUs(t, "podman precreate hook, "+tt.name, res, tt.want...)
		for _, w := range []string{"nvidiactl", "ldcache=yes", "link=libcuda.so.580.95.05"} {
			if !strings.Contains(res.Stdout, w) {
				t.Errorf("%s: container lacks %q:\n%s", tt.name, w, res.Stdout)
			}
		}
		if tt.name == "CDI annotation" && !strings.Contains(res.Stdout, "CUDA_DEVICE_ORDER=PCI_BUS_ID") {
			t.Errorf("%s: no profile env:\n%s", tt.name, res.Stdout)
		}
	}
	// No request: nothing of the driver's.
	res := run("localhost/nvbind-busybox:test", "sh", "-c", look)
	wantGPUs(t, "podman precreate hook, no request", res)
	if strings.Contains(res.Stdout, "nvidiactl") || strings.Contains(res.Stdout, "ldcache=yes") {
		t.Errorf("a container without a request got driver files:\n%s", res.Stdout)
	}
	// A request that cannot be met stops the container. Podman 4.3 shows
	// only the hook's exit status; nvbind's line is in its log.
	bad := run("-e", "NVIDIA_VISIBLE_DEVICES=9", "localhost/nvbind-busybox:test", "true")
	if bad.Code == 0 || !strings.Contains(bad.Stderr, "nvbind-hook precreate") {
		t.Errorf("a request for a GPU that does not exist: %s", bad)
	}
	fileContains(t, s.LogFile(), "precreate: ", "gpu=9")

	if r := configure("unconfigure"); r.Code != 0 || !strings.Contains(r.Stdout, "removed "+hookFile) {
		t.Errorf("unconfigure: %s", r)
	}
	if _, err := os.Stat(hookFile); err == nil {
		t.Errorf("unconfigure left %s", hookFile)
	}

	// The hooks.d file written for CRI-O (stage prestart), read by Podman:
	// the same hook injects into the created container.
	hooks := filepath.Join(dir, "hooks-prestart.d")
	p.Extra = []string{"--hooks-dir", hooks}
	crioFile := filepath.Join(hooks, "nvbind.json")
	if r := nvbindCLI(t, s.Env(), "runtime", "configure", "--runtime", "crio", "--mode", "hook", "--config", crioFile, "--path", bins.Hook); r.Code != 0 {
		t.Fatalf("configure --runtime crio --mode hook: %s", r)
	}
	fileContains(t, crioFile, `"prestart"`)
	res = run("-e", "NVIDIA_VISIBLE_DEVICES=3", "localhost/nvbind-busybox:test", "sh", "-c", look)
	wantGPUs(t, "hooks.d prestart stage, NVIDIA_VISIBLE_DEVICES=3", res, "nvidia3")
	for _, w := range []string{"nvidiactl", "ldcache=yes", "link=libcuda.so.580.95.05"} {
		if !strings.Contains(res.Stdout, w) {
			t.Errorf("hooks.d prestart stage: container lacks %q:\n%s", w, res.Stdout)
		}
	}
	wantGPUs(t, "hooks.d prestart stage, no request", run("localhost/nvbind-busybox:test", "ls", "/dev"))
}

// prestartBundle is a bundle whose spec calls nvbind-hook as a prestart
// hook, as CRI-O's hooks.d or a hand-written spec would.
func prestartBundle(t *testing.T, s *SimRoot, args ...string) *Bundle {
	t.Helper()
	b := newBundle(t, args...)
	b.Spec.Hooks = &rspec.Hooks{Prestart: []rspec.Hook{{Path: bins.Hook, Args: []string{"nvbind-hook", "prestart", "--config", s.Config}}}}
	withLdconfig(t, b)
	b.Save(t)
	return b
}

// runcRun runs the bundle on plain runc and deletes the container after.
func runcRun(t *testing.T, s *SimRoot, b *Bundle) Result {
	t.Helper()
	id := fmt.Sprintf("nvbind-pre-%d-%d", os.Getpid(), containerSeq.Add(1))
	t.Cleanup(func() { exec.Command("runc", "--root", s.RunRoot, "delete", "--force", id).Run() })
	return runCmd(t, nil, "runc", "--root", s.RunRoot, "run", "--bundle", b.Dir, id)
}

const lookInside = "ls /dev; ldconfig -p | grep -q 'libcuda.so.1 (libc6,x86-64) => " + driverLibDir + "/libcuda.so.1' && echo ldcache=yes; " +
	"echo link=$(readlink " + driverLibDir + "/libcuda.so.1); head -c4 " + driverLibDir + "/libcuda.so.1 | grep -q ELF && echo elf=yes; " +
	"grep ' " + driverLibDir + "/libcuda.so' /proc/self/mountinfo; cat /dev/nvidiactl </dev/null >/dev/null 2>/tmp/e; cat /tmp/e"

// TestRuncPrestartHook: plain runc with nvbind-hook as its prestart hook
// gives the container the GPUs asked for, the driver's libraries
// (read-only bind mounts, in the ld cache) and opens the device cgroup for
// them; a container without a request is untouched.
func TestRuncPrestartHook(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 4)
	before := hostMounts(t)
	for _, tt := range []struct {
		env  string
		want []string
	}{
		{"NVIDIA_VISIBLE_DEVICES=1,3", []string{"nvidia1", "nvidia3"}},
		{"NVIDIA_VISIBLE_DEVICES=all", []string{"nvidia0", "nvidia1", "nvidia2", "nvidia3"}},
	} {
		b := prestartBundle(t, s, "sh", "-c", lookInside)
		b.SetEnv(tt.env)
		b.Save(t)
		res := runcRun(t, s, b)
		wantGPUs(t, "runc prestart "+tt.env, res, tt.want...)
		for _, w := range []string{"nvidiactl", "ldcache=yes", "link=libcuda.so.580.95.05", "elf=yes", " ro,nosuid,nodev"} {
			if !strings.Contains(res.Stdout, w) {
				t.Errorf("%s: container lacks %q:\n%s", tt.env, w, res)
			}
		}
		// The simulated nodes have no driver behind them: opening one
		// gets past the device cgroup (which would say "Operation not
		// permitted") to the missing driver.
		if !strings.Contains(res.Stdout, "/dev/nvidiactl': No such device or address") {
			t.Errorf("%s: device cgroup denies /dev/nvidiactl:\n%s", tt.env, res.Stdout)
		}
	}
	b := prestartBundle(t, s, "sh", "-c", lookInside)
	res := runcRun(t, s, b)
	wantGPUs(t, "runc prestart, no request", res)
	if strings.Contains(res.Stdout, "nvidiactl\n") || strings.Contains(res.Stdout, "ldcache=yes") {
		t.Errorf("a container without a request got driver files:\n%s", res.Stdout)
	}
	// A request that cannot be met: runc fails the start with the line.
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=9")
	b.Save(t)
	if res := runcRun(t, s, b); res.Code == 0 || !strings.Contains(res.Stderr, "nvbind-hook: prestart:") || !strings.Contains(res.Stderr, "gpu=9") {
		t.Errorf("prestart with a GPU that does not exist: %s", res)
	}
	if left := containers(t, s.RunRoot); left != "" {
		t.Errorf("containers left: %s", left)
	}
	if after := hostMounts(t); after != before {
		t.Errorf("host mounts changed:\nbefore: %s\nafter:  %s", before, after)
	}
}

// hostMounts lists the host's mount points.
func hostMounts(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var pts []string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			pts = append(pts, f[4])
		}
	}
	return strings.Join(pts, " ")
}

// TestRuncPrestartHostileRootfs: the image's /dev and library dir are
// symlinks out of the rootfs (absolute, and a chain of ..). The prestart
// hook resolves every path inside the container's root: nothing of nvbind's
// appears in the host directories they name, and no mount is left on the
// host. (runc 1.1.5 itself follows the /dev link for its fd, stdin,
// stdout, stderr and ptmx symlinks; those are runc's.)
func TestRuncPrestartHostileRootfs(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 2)
	before := hostMounts(t)
	for name, target := range map[string]func(host string) string{
		"absolute": func(h string) string { return h },
		"dotdot":   func(h string) string { return strings.Repeat("../", 20) + strings.TrimPrefix(h, "/") },
	} {
		t.Run(name, func(t *testing.T) {
			hostDev, hostLib := t.TempDir(), t.TempDir()
			b := prestartBundle(t, s, "sh", "-c", lookInside)
			os.RemoveAll(filepath.Join(b.Rootfs(), driverLibDir))
			os.MkdirAll(filepath.Dir(filepath.Join(b.Rootfs(), driverLibDir)), 0o755)
			os.Symlink(target(hostLib), filepath.Join(b.Rootfs(), driverLibDir))
			os.RemoveAll(filepath.Join(b.Rootfs(), "dev"))
			os.Symlink(target(hostDev), filepath.Join(b.Rootfs(), "dev"))
			b.SetEnv("NVIDIA_VISIBLE_DEVICES=1")
			b.Save(t)
			res := runcRun(t, s, b)
			for _, runcs := range []string{"fd", "ptmx", "stdin", "stdout", "stderr"} {
				os.Remove(filepath.Join(hostDev, runcs))
			}
			assertEmptyDir(t, hostDev)
			assertEmptyDir(t, hostLib)
			// The links resolve inside the rootfs, where the hook made the
			// node and the mounts: the container runs with its GPU.
			if res.Code != 0 || !strings.Contains(res.Stdout, "nvidia1\n") || !strings.Contains(res.Stdout, "ldcache=yes") {
				t.Errorf("the container did not get its GPU:\n%s", res)
			}
			if left := containers(t, s.RunRoot); left != "" {
				t.Errorf("containers left: %s", left)
			}
		})
	}
	if after := hostMounts(t); after != before {
		t.Errorf("host mounts changed:\nbefore: %s\nafter:  %s", before, after)
	}
}

// TestDockerGpusHook: `docker run --gpus` on Docker's own runc, with
// nvbind-hook installed as nvidia-container-runtime-hook by `nvbind runtime
// configure --mode gpus` in a directory on dockerd's PATH. Without the
// link, Docker's own error.
func TestDockerGpusHook(t *testing.T) {
	requireRoot(t)
	dockerd := requireTool(t, "dockerd")
	docker := requireTool(t, "docker")
	requireTool(t, "containerd")
	s := newGeneratedSimRoot(t, 4)
	dir := shortTempDir(t, "nvb-gpus-")
	cfg := filepath.Join(dir, "daemon.json")
	os.WriteFile(cfg, []byte(`{"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 1024, "Soft": 1024}, "nproc": {"Name": "nproc", "Hard": 1024, "Soft": 1024}}}`), 0o644)
	linkDir := filepath.Join(dir, "bin")
	os.MkdirAll(linkDir, 0o755)
	link := filepath.Join(linkDir, "nvidia-container-runtime-hook")
	sock := "unix://" + filepath.Join(dir, "docker.sock")
	dk := func(args ...string) Result { return runT(t, nil, docker, append([]string{"-H", sock}, args...)...) }
	start := func(log string) *daemon {
		env := append(s.Env(), "PATH="+linkDir+":"+os.Getenv("PATH"))
		d := startDaemon(t, env, filepath.Join(dir, log), dockerd,
			"--config-file", cfg, "-H", sock,
			"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
			"--pidfile", filepath.Join(dir, "docker.pid"),
			"--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver", "vfs")
		d.extraPIDFiles = []string{filepath.Join(dir, "exec/containerd/containerd.pid")}
		d.waitReady(t, func() error {
			if r := dk("version"); r.Code != 0 {
				return fmt.Errorf("docker version: %s", strings.TrimSpace(r.Stderr))
			}
			return nil
		})
		return d
	}
	run := func(args ...string) Result {
		return dk(append([]string{"run", "--rm", "--network", "none"}, args...)...)
	}
	const look = "ls /dev; grep -q libcuda.so.1 /etc/ld.so.cache && echo ldcache=yes; echo link=$(readlink " + driverLibDir + "/libcuda.so.1)"

	// No hook on dockerd's PATH: Docker's own error.
	d := start("dockerd-nohook.log")
	if r := dk("import", busyboxTar(t, dir), "nvbind-busybox:test"); r.Code != 0 {
		t.Fatalf("docker import: %s", r)
	}
	if r := run("--gpus", "all", "nvbind-busybox:test", "true"); r.Code == 0 || !strings.Contains(r.Stderr, `could not select device driver "" with capabilities: [[gpu]]`) {
		t.Errorf("--gpus without a hook: %s", r)
	}
	d.stop(t)

	res := nvbindCLI(t, nil, "runtime", "configure", "--runtime", "docker", "--mode", "gpus", "--config", link, "--path", bins.Hook)
	if res.Code != 0 || !strings.Contains(res.Stdout, "docker: wrote "+link) {
		t.Fatalf("configure --mode gpus: %s", res)
	}
	if target, err := os.Readlink(link); err != nil || target != bins.Hook {
		t.Fatalf("link %s -> %q, %v", link, target, err)
	}
	start("dockerd.log")
	for _, tt := range []struct {
		gpus string
		want []string
	}{
		{"all", []string{"nvidia0", "nvidia1", "nvidia2", "nvidia3"}},
		{`"device=1"`, []string{"nvidia1"}},
		{"2", []string{"nvidia0", "nvidia1"}},
	} {
		res := run("--gpus", tt.gpus, "nvbind-busybox:test", "sh", "-c", look)
		wantGPUs(t, "docker run --gpus "+tt.gpus, res, tt.want...)
		for _, w := range []string{"nvidiactl", "ldcache=yes", "link=libcuda.so.580.95.05"} {
			if !strings.Contains(res.Stdout, w) {
				t.Errorf("--gpus %s: container lacks %q:\n%s", tt.gpus, w, res.Stdout)
			}
		}
	}
	wantGPUs(t, "docker run without --gpus", run("nvbind-busybox:test", "ls", "/dev"))
	// nvbind run finds this door (no nvbind runtime in dockerd, nvbind's
	// hook on the PATH) and passes the request as --gpus.
	nvrun := nvbindCLI(t, []string{"DOCKER_HOST=" + sock, "PATH=" + linkDir + ":" + os.Getenv("PATH")},
		"run", "--engine", "docker", "--gpus", "2,3", "--engine-arg=--network=none", "nvbind-busybox:test", "sh", "-c", look)
	wantGPUs(t, "nvbind run through the --gpus door", nvrun, "nvidia2", "nvidia3")
	bad := run("--gpus", `"device=9"`, "nvbind-busybox:test", "true")
	if bad.Code == 0 || !strings.Contains(bad.Stderr, "nvbind-hook: prestart:") || !strings.Contains(bad.Stderr, "gpu=9") {
		t.Errorf("--gpus for a GPU that does not exist: %s", bad)
	}
	if r := dk("ps", "-aq"); strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("containers left behind: %s", r.Stdout)
	}

	// configure never replaces a program of that name that is not nvbind's.
	other := filepath.Join(dir, "other-hook")
	os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755)
	if r := nvbindCLI(t, nil, "runtime", "configure", "--runtime", "docker", "--mode", "gpus", "--config", other, "--path", bins.Hook); r.Code == 0 || !strings.Contains(r.Stderr, "is not nvbind's") {
		t.Errorf("configure over another program: %s", r)
	}
	if r := nvbindCLI(t, nil, "runtime", "unconfigure", "--runtime", "docker", "--mode", "gpus", "--config", link); r.Code != 0 || !strings.Contains(r.Stdout, "removed "+link) {
		t.Errorf("unconfigure: %s", r)
	}
	if _, err := os.Lstat(link); err == nil {
		t.Errorf("unconfigure left %s", link)
	}
}

// TestPodmanRootlessPrecreateHook: rootless Podman (uid 65534, one-id
// mapping, its default runc) with the hooks.d file nvbind wrote: the hook
// runs as that user, injects the driver's files (the ld cache hook runs in
// the user's namespace) and writes nothing outside what the user owns (no
// just-in-time spec). A spec the user cannot read stops the container.
//
// Rootless runc bind-mounts device nodes from the host path equal to the
// container path (/dev/nvidia0): a real driver has them, a simulated root
// cannot put them in the host's /dev. The spec is therefore stripped of
// device nodes here; the runtime's request for them is checked first.
func TestPodmanRootlessPrecreateHook(t *testing.T) {
	requireRoot(t)
	podman := requireTool(t, "podman")
	setpriv := requireTool(t, "setpriv")
	requireTool(t, "conmon")
	// Everything the user reads sits in a world-readable dir.
	dir, err := os.MkdirTemp("", "nvb-rl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	hook := filepath.Join(dir, "bin", "nvbind-hook")
	os.MkdirAll(filepath.Dir(hook), 0o755)
	bin, _ := os.ReadFile(bins.Hook)
	os.WriteFile(hook, bin, 0o755)
	driver := filepath.Join(dir, "driver")
	if _, err := simroot.Build(driver, simroot.Options{GPUs: 2, LDCache: true}); err != nil {
		t.Fatal(err)
	}
	specDir := filepath.Join(dir, "cdi")
	spec := filepath.Join(specDir, "nvidia.json")
	mustRun(t, nil, bins.CLI, "cdi", "generate", "--driver-root", driver, "--output", spec, "--hook-path", hook, "--no-nvml", "--format", "json")
	os.Chmod(specDir, 0o755)
	os.Chmod(spec, 0o644)
	withNodes, _ := os.ReadFile(spec)
	jit := filepath.Join(dir, "jit", "nvidia.json")
	os.MkdirAll(filepath.Dir(jit), 0o755)
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[cdi]\nspec-dirs = [%q]\njit-spec = %q\n[driver]\nroot = %q\n[hook]\npath = %q\n", specDir, jit, driver, hook)), 0o644)
	hooksFile := filepath.Join(dir, "hooks.d", "nvbind.json")
	if r := nvbindCLI(t, []string{"NVBIND_CONFIG=" + cfg}, "runtime", "configure", "--runtime", "podman", "--mode", "hook", "--config", hooksFile, "--path", hook); r.Code != 0 {
		t.Fatalf("configure: %s", r)
	}
	home, xdg := filepath.Join(dir, "home"), filepath.Join(dir, "xdg")
	for _, d := range []string{home, xdg} {
		os.MkdirAll(d, 0o700)
		os.Chown(d, 65534, 65534)
	}
	tarball := busyboxTar(t, filepath.Join(dir, "image"))
	os.Chmod(filepath.Dir(tarball), 0o755)
	os.Chmod(tarball, 0o644)
	pm := func(args ...string) Result {
		base := []string{"--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i", "PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_RUNTIME_DIR=" + xdg,
			podman, "--root", filepath.Join(home, "root"), "--runroot", filepath.Join(xdg, "run"), "--storage-driver", "vfs",
			"--cgroup-manager", "cgroupfs", "--events-backend", "file", "--hooks-dir", filepath.Dir(hooksFile)}
		return runT(t, nil, setpriv, append(base, args...)...)
	}
	t.Cleanup(func() {
		pm("rm", "--all", "--force")
		// Rootless Podman keeps a pause process holding its namespaces.
		killPIDFile(filepath.Join(xdg, "libpod/tmp/pause.pid"))
	})
	if r := pm("import", tarball, "localhost/nvbind-busybox:test"); r.Code != 0 {
		t.Fatalf("rootless podman import: %s", r)
	}
	run := func(args ...string) Result {
		return pm(append([]string{"run", "--rm", "--network", "none"}, args...)...)
	}
	// With the device nodes: the hook asked runc for them.
	if r := run("-e", "NVIDIA_VISIBLE_DEVICES=1", "localhost/nvbind-busybox:test", "true"); r.Code == 0 || !strings.Contains(r.Stderr, "mount /dev/nvidiactl:") {
		t.Errorf("rootless podman with device nodes: %s", r)
	}
	os.WriteFile(spec, stripDeviceNodes(t, withNodes), 0o644)
	look := "id -u; ls /dev; grep -q libcuda.so.1 /etc/ld.so.cache && echo ldcache=yes; echo link=$(readlink " + driverLibDir + "/libcuda.so.1); head -c4 " + driverLibDir + "/libcuda.so.1 | grep -q ELF && echo elf=yes"
	res := run("-e", "NVIDIA_VISIBLE_DEVICES=1", "localhost/nvbind-busybox:test", "sh", "-c", look)
	wantGPUs(t, "rootless podman, precreate hook", res)
	for _, w := range []string{"ldcache=yes", "link=libcuda.so.580.95.05", "elf=yes"} {
		if !strings.Contains(res.Stdout, w) {
			t.Errorf("rootless: container lacks %q:\n%s", w, res.Stdout)
		}
	}
	wantGPUs(t, "rootless podman, no request", run("localhost/nvbind-busybox:test", "ls", "/dev"))
	if _, err := os.Stat(jit); err == nil {
		t.Errorf("the rootless hook wrote %s", jit)
	}
	os.Chmod(spec, 0o600)
	if r := run("-e", "NVIDIA_VISIBLE_DEVICES=1", "localhost/nvbind-busybox:test", "true"); r.Code == 0 || !strings.Contains(r.Stderr, "nvbind-hook precreate") {
		t.Errorf("rootless podman with an unreadable spec: %s", r)
	}
}

// stripDeviceNodes drops every deviceNodes list from a JSON CDI spec.
func stripDeviceNodes(t *testing.T, data []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			delete(x, "deviceNodes")
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	out, _ := json.Marshal(v)
	return out
}

// TestPrecreateAnnotationPrefix: a container asking only through an
// annotation prefix the config's [policy] adds gets its GPU through the
// precreate door too: neither the early answer nor main's takes the spec
// for one without a request.
func TestPrecreateAnnotationPrefix(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 2)
	s.WriteConfig(t, fmt.Sprintf("\n[policy]\naudit-log = %q\nannotation-prefixes = [\"gpus.example.com/\"]\n", filepath.Join(t.TempDir(), "audit.log")))
	b := newBundle(t, "true")
	b.Spec.Annotations = map[string]string{"gpus.example.com/gpu": "nvidia.com/gpu=1"}
	b.Save(t)
	res := precreate(t, nil, b.ReadConfig(t), "--config", s.Config)
	if res.Code != 0 || !strings.Contains(res.Stdout, "/dev/nvidia1") {
		t.Fatalf("precreate with a request through the config's annotation prefix: %s", res)
	}
	// Without that prefix in the config, the annotation asks for nothing.
	s.WriteConfig(t, "")
	if res := precreate(t, nil, b.ReadConfig(t), "--config", s.Config); res.Code != 0 || res.Stdout != string(b.ReadConfig(t)) {
		t.Errorf("precreate without the prefix in the config changed the spec: %s", res)
	}
}
