package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

// TestCDISpecAcceptedByPodman: a spec nvbind generates for a simulated
// driver root is read by the host's own Podman (4.3 on Debian 12: CDI up to
// 0.5.0) through its CDI support, without nvbind-runtime; the container
// gets exactly the GPU it asked for, the driver files and the hooks' work.
func TestCDISpecAcceptedByPodman(t *testing.T) {
	requireRoot(t)
	podman := requireTool(t, "podman")
	requireTool(t, "conmon")
	dir := shortTempDir(t, "nvb-cdi-")
	r, err := simroot.Build(filepath.Join(dir, "driver"), simroot.Options{GPUs: 2, LDCache: true})
	if err != nil {
		t.Fatal(err)
	}

	// Podman 4.3 has no --cdi-spec-dir: it reads /etc/cdi and /var/run/cdi.
	// Another nvidia.com/gpu spec there would clash with ours.
	for _, d := range []string{"/etc/cdi", "/var/run/cdi"} {
		matches, _ := filepath.Glob(filepath.Join(d, "*"))
		for _, m := range matches {
			if data, err := os.ReadFile(m); err == nil && bytes.Contains(data, []byte("nvidia.com/gpu")) {
				t.Fatalf("%s already defines nvidia.com/gpu devices; move it away to run this test", m)
			}
		}
	}
	spec := fmt.Sprintf("/var/run/cdi/nvbind-it-%d.yaml", os.Getpid())
	// The spec and the lock file its writer takes beside it.
	t.Cleanup(func() { os.Remove(spec); os.Remove(filepath.Join(filepath.Dir(spec), "."+filepath.Base(spec)+".lock")) })

	conf := filepath.Join(dir, "containers.conf")
	os.WriteFile(conf, []byte("[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"), 0o644)
	pm := func(args ...string) Result {
		base := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
			"--storage-driver", "vfs", "--tmpdir", filepath.Join(dir, "tmp")}
		return runT(t, []string{"CONTAINERS_CONF=" + conf}, podman, append(base, args...)...)
	}
	t.Cleanup(func() { pm("rm", "--all", "--force") })
	if res := pm("import", busyboxTar(t, dir), "localhost/nvbind-cdi:test"); res.Code != 0 {
		t.Fatalf("podman import: %s", res)
	}
	// Both formats nvbind writes: JSON (a file's default) and YAML.
	for format, version := range map[string]string{"json": `"cdiVersion":"0.5.0"`, "yaml": `cdiVersion: "0.5.0"`} {
		t.Run(format, func(t *testing.T) {
			gen := runT(t, []string{"NVBIND_CONFIG=" + filepath.Join(dir, "none.toml")}, bins.CLI, "cdi", "generate",
				"--driver-root", r.Dir, "--output", spec, "--hook-path", bins.Hook, "--format", format)
			if gen.Code != 0 || !strings.Contains(gen.Stdout, "wrote "+spec+": driver 580.95.05, 2 GPU(s)") {
				t.Fatalf("nvbind cdi generate: %s", gen)
			}
			if data, _ := os.ReadFile(spec); !bytes.Contains(data, []byte(version)) {
				t.Fatalf("spec is not %s of cdiVersion 0.5.0:\n%.300s", format, data)
			}
			checkPodmanGPU1(t, r, pm)
		})
	}
}

// checkPodmanGPU1 runs a container asking Podman for nvidia.com/gpu=1 and
// checks what it sees.
func checkPodmanGPU1(t *testing.T, r *simroot.Root, pm func(args ...string) Result) {
	script := "ls /dev; ls -l /dev/nvidia1 /dev/dri/by-path; nvidia-smi -L; " +
		"readlink /usr/lib/x86_64-linux-gnu/libcuda.so.1; echo env=$NVBIND_DRIVER_VERSION; " +
		"ls /usr/lib/x86_64-linux-gnu | grep -c GLX; true"
	res := pm("run", "--rm", "--runtime", requireTool(t, "runc"), "--network", "none",
		"--ulimit", ulimitNofile, "--ulimit", ulimitNproc, "--env", "PATH=/usr/bin:/bin",
		"--device", "nvidia.com/gpu=1", "localhost/nvbind-cdi:test", "/bin/sh", "-c", script)
	if res.Code != 0 {
		t.Fatalf("podman run --device nvidia.com/gpu=1: %s", res)
	}
	out := res.Stdout
	devs := strings.Fields(strings.SplitN(out, "crw", 2)[0])
	has := func(name string) bool {
		for _, d := range devs {
			if d == name {
				return true
			}
		}
		return false
	}
	if !has("nvidia1") || has("nvidia0") || !has("nvidiactl") || !has("nvidia-uvm") {
		t.Errorf("/dev in the container: %v", devs)
	}
	for _, want := range []string{
		"195,   1", // /dev/nvidia1 is the GPU's char device
		"pci-0000:0f:00.0-card -> ../card2",
		// (simulated) nvidia-smi sees only its GPU, numbered 0 as in a real container
		"GPU 0: NVIDIA A100-SXM4-80GB (UUID: " + r.GPUs[1].UUID + ")\n",
		"libcuda.so.580.95.05\n", // the hook made the SONAME link
		"env=580.95.05\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("container output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, r.GPUs[0].UUID) {
		t.Errorf("the container sees GPU 0:\n%s", out)
	}
	// A compute request through plain CDI gets no graphics libraries.
	if !strings.HasSuffix(strings.TrimSpace(out), "\n0") {
		t.Errorf("GL libraries in a compute container:\n%s", out)
	}
}

// TestCDIStaleSpecRegeneratedOnce: after a driver upgrade the spec on disk
// is stale; eight concurrent creates through nvbind-runtime regenerate it
// exactly once (one atomic rename onto the spec file) and all get their
// GPU. To
// make the eight truly concurrent, the test holds the spec's lock (the
// .<name>.lock file beside it) until all eight wait on it in
// /proc/locks: they have all seen the stale spec by then.
func TestCDIStaleSpecRegeneratedOnce(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 2)
	jitDir := filepath.Join(filepath.Dir(s.Config), "jit")
	jit := filepath.Join(jitDir, "nvidia.yaml")
	os.MkdirAll(jitDir, 0o755)
	// The generated spec moves to the JIT path; the spec dir stays empty.
	if err := os.Rename(filepath.Join(s.SpecDir, "nvidia.yaml"), jit); err != nil {
		t.Fatal(err)
	}
	s.WriteConfig(t, "")
	cfg, _ := os.ReadFile(s.Config)
	cfg = bytes.Replace(cfg, []byte(`jit-spec = ""`), []byte(fmt.Sprintf("jit-spec = %q", jit)), 1)
	os.WriteFile(s.Config, cfg, 0o644)

	// Driver upgrade: the kernel module now reports another version.
	vf := filepath.Join(s.Dir, "proc/driver/nvidia/version")
	os.Chmod(vf, 0o644)
	os.WriteFile(vf, []byte("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.105.08  Wed Oct 29 00:00:00 UTC 2025\n"), 0o444)

	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, jitDir, unix.IN_MOVED_FROM); err != nil {
		t.Fatal(err)
	}

	const n = 8
	var bundles []*Bundle
	for i := 0; i < n; i++ {
		b := newBundle(t, "ls", "/dev")
		b.SetEnv("NVIDIA_VISIBLE_DEVICES=1")
		b.Save(t)
		bundles = append(bundles, b)
	}
	lockPath := filepath.Join(jitDir, ".nvidia.yaml.lock")
	lockFd, err := unix.Open(lockPath, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lockFd)
	if err := unix.Flock(lockFd, unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Fstat(lockFd, &st)
	waiters := func() int {
		data, _ := os.ReadFile("/proc/locks")
		count := 0
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "->") && strings.Contains(line, fmt.Sprintf(":%d ", st.Ino)) {
				count++
			}
		}
		return count
	}

	results := make([]Result, n)
	var wg sync.WaitGroup
	for i, b := range bundles {
		id := fmt.Sprintf("nvbind-jit-%d-%d", os.Getpid(), i)
		t.Cleanup(func() { exec.Command("runc", "--root", s.RunRoot, "delete", "--force", id).Run() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(bins.Runtime, "--root", s.RunRoot, "run", "--bundle", b.Dir, id)
			cmd.Env = append(os.Environ(), s.Env()...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			results[i] = Result{Stdout: stdout.String(), Stderr: stderr.String()}
			if ee, ok := err.(*exec.ExitError); ok {
				results[i].Code = ee.ExitCode()
			} else if err != nil {
				results[i].Code = -1
				results[i].Stderr += err.Error()
			}
		}()
	}
	if !waitFor(30*time.Second, func() bool { return waiters() == n }) {
		t.Errorf("only %d of %d creates waited on the spec lock", waiters(), n)
	}
	unix.Flock(lockFd, unix.LOCK_UN)
	wg.Wait()
	for i, res := range results {
		if res.Code != 0 || !strings.Contains(res.Stdout, "nvidia1\n") || strings.Contains(res.Stdout, "nvidia0\n") {
			t.Errorf("container %d: %s", i, res)
		}
	}

	renames := 0
	buf := make([]byte, 64*1024)
	for {
		k, err := unix.Read(fd, buf)
		if k <= 0 || err != nil {
			break
		}
		for off := 0; off+unix.SizeofInotifyEvent <= k; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			// Count renames by their temporary source names, which are
			// unique: inotify merges repeated identical events, so the
			// target name alone would count many renames as one.
			if strings.HasPrefix(name, ".nvidia.yaml.tmp-") {
				renames++
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
	if renames != 1 {
		t.Errorf("the stale spec was written %d times under %d concurrent creates, want once", renames, n)
	}
	if data, _ := os.ReadFile(jit); !bytes.Contains(data, []byte("NVBIND_DRIVER_VERSION=580.105.08")) {
		t.Errorf("the spec was not regenerated for the new driver:\n%.400s", data)
	}
}
