package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These tests wire nvbind into real engines with `nvbind runtime configure
// --config` and run busybox containers through them. Each test starts its
// own daemon on private sockets and directories and stops it by pid.
//
// How nvbind-runtime finds the test's config (NVBIND_CONFIG) in each case:
//   - dockerd passes its environment to the containerd it starts, that to
//     the shim, the shim to the runtime: start dockerd with NVBIND_CONFIG.
//   - containerd: the same, from the containerd daemon's environment.
//   - Podman runs the runtime through conmon, which passes on only
//     containers.conf's conmon_env_vars, never the caller's environment: the
//     test sets NVBIND_CONFIG there. (A real install uses
//     /etc/nvbind/config.toml and needs none of this.)

const ulimitNofile, ulimitNproc = "nofile=1024:1024", "nproc=1024:1024"

func TestDockerRunsNvbind(t *testing.T) {
	requireRoot(t)
	dockerd := requireTool(t, "dockerd")
	docker := requireTool(t, "docker")
	requireTool(t, "containerd")
	s := newSimRoot(t, 4)
	dir := shortTempDir(t, "nvb-docker-")

	// A daemon.json with the user's settings already in it.
	cfg := filepath.Join(dir, "daemon.json")
	orig := `{"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 1024, "Soft": 1024}, "nproc": {"Name": "nproc", "Hard": 1024, "Soft": 1024}}, "log-level": "info"}`
	if err := os.WriteFile(cfg, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	res := nvbindCLI(t, nil, "runtime", "configure", "--runtime", "docker", "--config", cfg, "--path", bins.Runtime)
	if res.Code != 0 || !strings.Contains(res.Stdout, "docker: wrote "+cfg) {
		t.Fatalf("configure: %s", res)
	}
	fileContains(t, cfg, `"default-ulimits"`, `"log-level": "info"`, `"nvbind"`, bins.Runtime)
	if res := nvbindCLI(t, nil, "runtime", "configure", "--runtime", "docker", "--config", cfg, "--path", bins.Runtime); res.Code != 0 || !strings.Contains(res.Stdout, "nothing changed") {
		t.Errorf("second configure: %s", res)
	}

	sock := "unix://" + filepath.Join(dir, "docker.sock")
	d := startDaemon(t, s.Env(), filepath.Join(dir, "dockerd.log"), dockerd,
		"--config-file", cfg, "-H", sock,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver", "vfs")
	// dockerd starts its own containerd under the exec root.
	d.extraPIDFiles = []string{filepath.Join(dir, "exec/containerd/containerd.pid")}
	dk := func(args ...string) Result { return runT(t, nil, docker, append([]string{"-H", sock}, args...)...) }
	d.waitReady(t, func() error {
		if r := dk("version"); r.Code != 0 {
			return fmt.Errorf("docker version: %s", strings.TrimSpace(r.Stderr))
		}
		return nil
	})

	// dockerd understood the file nvbind wrote.
	info := dk("info", "--format", "{{json .Runtimes}}")
	var runtimes map[string]struct {
		Path string `json:"path"`
	}
	if err := json.Unmarshal([]byte(info.Stdout), &runtimes); err != nil || runtimes["nvbind"].Path != bins.Runtime {
		t.Fatalf("dockerd runtimes: %v %s", err, info)
	}

	if r := dk("import", busyboxTar(t, dir), "nvbind-busybox:test"); r.Code != 0 {
		t.Fatalf("docker import: %s", r)
	}
	run := func(args ...string) Result {
		return dk(append([]string{"run", "--rm", "--network", "none"}, args...)...)
	}
	wantGPUs(t, "docker --runtime nvbind, NVIDIA_VISIBLE_DEVICES=0,2",
		run("--runtime", "nvbind", "-e", "NVIDIA_VISIBLE_DEVICES=0,2", "nvbind-busybox:test", "ls", "/dev"),
		"nvidia0", "nvidia2")
	wantGPUs(t, "docker --runtime nvbind, NVIDIA_VISIBLE_DEVICES=all",
		run("--runtime", "nvbind", "-e", "NVIDIA_VISIBLE_DEVICES=all", "nvbind-busybox:test", "ls", "/dev"),
		"nvidia0", "nvidia1", "nvidia2", "nvidia3")
	// The default runtime (runc) gives no GPU: the devices above came from nvbind.
	wantGPUs(t, "docker without --runtime", run("-e", "NVIDIA_VISIBLE_DEVICES=all", "nvbind-busybox:test", "ls", "/dev"))

	// nvbind run: finds the daemon's nvbind runtime itself, passes the
	// request, streams the output and returns the container's exit code.
	nvrun := func(args ...string) Result {
		return nvbindCLI(t, []string{"DOCKER_HOST=" + sock}, append([]string{"run", "--engine-arg=--network=none"}, args...)...)
	}
	wantGPUs(t, "nvbind run --gpus 1,3 (docker)", nvrun("--gpus", "1,3", "nvbind-busybox:test", "ls", "/dev"), "nvidia1", "nvidia3")
	wantGPUs(t, "nvbind run --engine docker --gpus 2", nvrun("--engine", "docker", "--gpus", "2", "nvbind-busybox:test", "ls", "/dev"), "nvidia0", "nvidia1")
	if r := nvrun("nvbind-busybox:test", "sh", "-c", "echo out; exit 7"); r.Code != 7 || !strings.Contains(r.Stdout, "out") {
		t.Errorf("nvbind run exit code and output: %s", r)
	}
	if r := nvbindCLI(t, []string{"DOCKER_HOST=unix://" + filepath.Join(dir, "nope.sock")}, "run", "--engine", "docker", "nvbind-busybox:test", "true"); r.Code != 1 || !strings.Contains(r.Stderr, "docker: daemon not reachable") {
		t.Errorf("nvbind run without a daemon: %s", r)
	}
	if r := dk("ps", "-aq"); strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("containers left behind: %s", r.Stdout)
	}
	noRuncContainers(t, filepath.Join(dir, "exec/runtime-runc/moby"))

	// unconfigure removes nvbind and keeps the user's settings.
	if r := nvbindCLI(t, nil, "runtime", "unconfigure", "--runtime", "docker", "--config", cfg); r.Code != 0 {
		t.Fatalf("unconfigure: %s", r)
	}
	if got := fileContains(t, cfg, `"default-ulimits"`, `"log-level": "info"`); strings.Contains(got, "nvbind") {
		t.Errorf("unconfigure left nvbind in daemon.json:\n%s", got)
	}
	fileContains(t, cfg+".nvbind.bak", orig)
}

func TestPodmanRunsNvbind(t *testing.T) {
	requireRoot(t)
	requireTool(t, "podman")
	requireTool(t, "conmon")
	s := newSimRoot(t, 4)
	dir := shortTempDir(t, "nvb-podman-")

	// The user's containers.conf, read alone through CONTAINERS_CONF.
	conf := filepath.Join(dir, "containers.conf")
	orig := fmt.Sprintf(`# test settings: no systemd here
[containers]
default_ulimits = [%q, %q]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
# conmon passes only these to the runtime, never podman's environment.
conmon_env_vars = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", %q]
`, ulimitNofile, ulimitNproc, "NVBIND_CONFIG="+s.Config)
	if err := os.WriteFile(conf, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := nvbindCLI(t, nil, "runtime", "configure", "--runtime", "podman", "--config", conf, "--path", bins.Runtime); r.Code != 0 {
		t.Fatalf("configure: %s", r)
	}
	got := fileContains(t, conf, "# test settings: no systemd here", "# conmon passes only these",
		`"nvbind", "nvbind-runtime"`, `nvbind = [`+quoteTOML(bins.Runtime)+`]`)
	if !strings.HasPrefix(got, strings.SplitN(orig, "conmon_env_vars", 2)[0]) {
		t.Errorf("configure rewrote the user's lines:\n%s", got)
	}

	p := newPrivatePodman(t, dir, conf)
	run := p.Run
	wantGPUs(t, "podman --runtime PATH",
		run("--runtime", bins.Runtime, "-e", "NVIDIA_VISIBLE_DEVICES=1,3", "localhost/nvbind-busybox:test", "ls", "/dev"),
		"nvidia1", "nvidia3")
	wantGPUs(t, "podman --runtime nvbind (configured name)",
		run("--runtime", "nvbind", "-e", "NVIDIA_VISIBLE_DEVICES=0,2", "localhost/nvbind-busybox:test", "ls", "/dev"),
		"nvidia0", "nvidia2")

	// runtime_supports_json makes Podman pass --log to nvbind-runtime and
	// show its error instead of a bare exit status.
	bad := run("--runtime", "nvbind", "-e", "NVIDIA_VISIBLE_DEVICES=9", "localhost/nvbind-busybox:test", "true")
	if bad.Code == 0 || !strings.Contains(bad.Stderr, "nvbind") || !strings.Contains(bad.Stderr, "gpu=9") {
		t.Errorf("a request for a GPU that does not exist: %s", bad)
	}
	// nvbind run with Podman: the engine's settings come from its own
	// config files (as a user's would), nvbind finds the registered runtime.
	storage := filepath.Join(dir, "storage.conf")
	os.WriteFile(storage, []byte(fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "run"))), 0o644)
	runConf := filepath.Join(dir, "containers-run.conf")
	confNow, _ := os.ReadFile(conf)
	os.WriteFile(runConf, []byte(strings.Replace(string(confNow), "[engine]\n", fmt.Sprintf("[engine]\ntmp_dir = %q\n", filepath.Join(dir, "tmp")), 1)), 0o644)
	nvrun := func(args ...string) Result {
		cidfile, track := p.CIDFile()
		defer track()
		return nvbindCLI(t, []string{"CONTAINERS_CONF=" + runConf, "CONTAINERS_STORAGE_CONF=" + storage, "DOCKER_HOST=unix:///nonexistent"},
			append([]string{"run", "--engine-arg=--network=none", "--engine-arg=--cidfile=" + cidfile}, args...)...)
	}
	wantGPUs(t, "nvbind run --gpus 0,3 (podman, picked as docker has no daemon)", nvrun("--gpus", "0,3", "localhost/nvbind-busybox:test", "ls", "/dev"), "nvidia0", "nvidia3")
	if r := nvrun("--engine", "podman", "--gpus", "1", "--profile", "ml", "--param", "shm-size=256m", "localhost/nvbind-busybox:test", "sh", "-c", "ls /dev; env; exit 3"); r.Code != 3 ||
		!strings.Contains(r.Stdout, "nvidia0") || !strings.Contains(r.Stdout, "NVBIND_PROFILE=ml") {
		t.Errorf("nvbind run --engine podman --profile ml: %s", r)
	}

	if r := p.Cmd("ps", "-aq"); strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("containers left behind: %s", r.Stdout)
	}
	// Podman runs `delete` itself with an environment of only
	// XDG_RUNTIME_DIR (no PATH, no NVBIND_CONFIG): nvbind-runtime must still
	// find runc, or runc's state of every container stays behind.
	for _, id := range p.ids {
		if r := runT(t, nil, "runc", "state", id); r.Code == 0 {
			t.Errorf("runc still has container %s (Podman's delete did not reach runc)", id)
		}
	}

	if r := nvbindCLI(t, nil, "runtime", "unconfigure", "--runtime", "podman", "--config", conf); r.Code != 0 {
		t.Fatalf("unconfigure: %s", r)
	}
	if got, _ := os.ReadFile(conf); string(got) != orig {
		t.Errorf("unconfigure did not restore the file:\n%s\nwant:\n%s", got, orig)
	}
}

// criDisabled keeps the test's containerd lean: ctr does not need CRI.
const criDisabled = "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"

func TestContainerdRunsNvbind(t *testing.T) {
	requireRoot(t)
	containerd := requireTool(t, "containerd")
	ctr := requireTool(t, "ctr")
	s := newSimRoot(t, 4)
	dir := shortTempDir(t, "nvb-ctrd-")
	sock := filepath.Join(dir, "containerd.sock")

	cfg := filepath.Join(dir, "config.toml")
	orig := fmt.Sprintf(`version = 2
# private daemon for the test
root = %q
state = %q
%s
[grpc]
  address = %q

[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), criDisabled, sock, sock+".ttrpc")
	if err := os.WriteFile(cfg, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := nvbindCLI(t, nil, "runtime", "configure", "--runtime", "containerd", "--config", cfg, "--path", bins.Runtime); r.Code != 0 {
		t.Fatalf("configure: %s", r)
	}
	if got := fileContains(t, cfg, `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvbind]`); !strings.HasPrefix(got, orig) {
		t.Errorf("configure changed the user's lines:\n%s", got)
	}
	// containerd reads the handler as nvbind wrote it. (`config dump` leaves
	// out disabled plugins, so dump a copy with the CRI plugin enabled.)
	configured, _ := os.ReadFile(cfg)
	withCRI := filepath.Join(dir, "with-cri.toml")
	os.WriteFile(withCRI, []byte(strings.Replace(string(configured), criDisabled, "", 1)), 0o644)
	dump := mustRun(t, nil, containerd, "--config", withCRI, "config", "dump").Stdout
	if !strings.Contains(dump, `runtime_type = "io.containerd.runc.v2"`) || !strings.Contains(dump, `BinaryName = `+quoteTOML(bins.Runtime)) {
		t.Errorf("containerd config dump lacks the nvbind handler:\n%s", dump)
	}

	d := startDaemon(t, s.Env(), filepath.Join(dir, "containerd.log"), containerd, "--config", cfg)
	c := func(args ...string) Result {
		return runT(t, nil, ctr, append([]string{"--address", sock, "--namespace", "nvbind-test"}, args...)...)
	}
	d.waitReady(t, func() error {
		if r := c("version"); r.Code != 0 {
			return fmt.Errorf("ctr version: %s", strings.TrimSpace(r.Stderr))
		}
		return nil
	})
	rootfs := filepath.Join(dir, "rootfs")
	makeBusyboxRootfs(t, requireTool(t, "busybox"), rootfs)
	run := func(id string, flags []string, command ...string) Result {
		t.Cleanup(func() {
			c("task", "kill", "--signal", "SIGKILL", id)
			c("task", "delete", id)
			c("container", "delete", id)
		})
		args := []string{"run", "--rm", "--runc-binary", bins.Runtime, "--runc-root", filepath.Join(dir, "runc"), "--rootfs"}
		args = append(append(args, flags...), rootfs, id)
		return c(append(args, command...)...)
	}
	wantGPUs(t, "ctr run NVIDIA_VISIBLE_DEVICES=1,2",
		run("env", []string{"--env", "NVIDIA_VISIBLE_DEVICES=1,2"}, "/bin/ls", "/dev"),
		"nvidia1", "nvidia2")
	wantGPUs(t, "ctr run with a CDI annotation",
		run("annotation", []string{"--annotation", "cdi.k8s.io/gpu=nvidia.com/gpu=3"}, "/bin/ls", "/dev"),
		"nvidia3")
	if r := c("containers", "list", "-q"); strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("containers left behind: %s", r.Stdout)
	}
	noRuncContainers(t, filepath.Join(dir, "runc", "nvbind-test")) // the shim adds the namespace

	if r := nvbindCLI(t, nil, "runtime", "unconfigure", "--runtime", "containerd", "--config", cfg); r.Code != 0 {
		t.Fatalf("unconfigure: %s", r)
	}
	if got, _ := os.ReadFile(cfg); string(got) != orig {
		t.Errorf("unconfigure did not restore the file:\n%s\nwant:\n%s", got, orig)
	}
}

// TestConfigureContainerdDropIn: with config version 3 importing conf.d,
// configure writes a drop-in and leaves the main file alone.
func TestConfigureContainerdDropIn(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	orig := "version = 3\nimports = [\"" + dir + "/conf.d/*.toml\"]\n"
	if err := os.WriteFile(cfg, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	r := nvbindCLI(t, nil, "runtime", "configure", "--runtime", "containerd", "--config", cfg, "--path", "/usr/local/bin/nvbind-runtime")
	drop := filepath.Join(dir, "conf.d", "99-nvbind.toml")
	if r.Code != 0 || !strings.Contains(r.Stdout, "wrote "+drop) {
		t.Fatalf("configure: %s", r)
	}
	fileContains(t, drop, "version = 3", `[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvbind]`)
	if got, _ := os.ReadFile(cfg); string(got) != orig {
		t.Errorf("main file changed:\n%s", got)
	}
}

// TestConfigureUnparseable: a broken file is named, left alone, exit 1.
func TestConfigureUnparseable(t *testing.T) {
	for engine, content := range map[string]string{
		"docker":     `{"runtimes": {`,
		"containerd": "version = 2\n[plugins.\n",
		"podman":     "[engine\n",
		"crio":       "[crio.runtime]]\n",
	} {
		path := filepath.Join(t.TempDir(), "config")
		os.WriteFile(path, []byte(content), 0o644)
		r := nvbindCLI(t, nil, "runtime", "configure", "--runtime", engine, "--config", path)
		if r.Code != 1 || !strings.Contains(r.Stderr, path+": cannot parse, left unchanged") {
			t.Errorf("%s: %s", engine, r)
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Errorf("%s: file changed", engine)
		}
		if _, err := os.Stat(path + ".nvbind.bak"); err == nil {
			t.Errorf("%s: backup made of an unchanged file", engine)
		}
	}
}

// TestDoctorSimulatedRoot runs `nvbind doctor` against a simulated driver.
func TestDoctorSimulatedRoot(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 4)
	r := nvbindCLI(t, s.Env(), "doctor", "--json", "--driver-root", s.Dir)
	var report struct {
		Checks []struct{ Name, Status, Message, Fix string }
	}
	if err := json.Unmarshal([]byte(r.Stdout), &report); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, r)
	}
	status := map[string]string{}
	for _, c := range report.Checks {
		status[c.Name] = c.Status
		if c.Status == "fail" || c.Status == "warn" {
			if c.Fix == "" {
				t.Errorf("%s: %s without a fix", c.Name, c.Status)
			}
		}
	}
	if status["driver"] != "pass" || status["device-nodes"] != "pass" || status["config"] != "pass" {
		t.Errorf("doctor on a simulated root: %s", r.Stdout)
	}
	if failed := strings.Contains(r.Stdout, `"status": "fail"`); failed != (r.Code == 1) {
		t.Errorf("exit %d does not match the report:\n%s", r.Code, r.Stdout)
	}
}
