package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cmdTimeout bounds every engine command, so a wedged daemon fails the test
// instead of hanging the run.
const cmdTimeout = 2 * time.Minute

// runT runs a program with extra env and a timeout, capturing its output.
func runT(t *testing.T, env []string, name string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %s: timed out after %s\n%s", name, strings.Join(args, " "), cmdTimeout, res)
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", name, err)
	}
	return res
}

// mustRun is runT that fails the test on a non-zero exit.
func mustRun(t *testing.T, env []string, name string, args ...string) Result {
	t.Helper()
	res := runT(t, env, name, args...)
	if res.Code != 0 {
		t.Fatalf("%s %s: %s", name, strings.Join(args, " "), res)
	}
	return res
}

// shortTempDir is a temp dir with a short path: daemons put unix sockets
// under it, and a socket path must fit in 108 bytes.
func shortTempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// daemon is a process a test started and must stop.
type daemon struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	// extraPIDFiles name processes the daemon started itself (dockerd's
	// containerd), stopped too in case the daemon could not stop them.
	extraPIDFiles []string
}

// startDaemon starts a long-running program with extra env, its output in
// log. Its stop (by pid: SIGTERM, then SIGKILL after 20s) is registered
// with t.Cleanup before anything else can fail, so it runs even when the
// test fails; on failure the log's tail is printed.
func startDaemon(t *testing.T, env []string, log string, name string, args ...string) *daemon {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: a Ctrl-C on `go test` must not reach it before
	// the cleanup does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	d := &daemon{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() { cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("%s log (%s), last lines:\n%s", name, log, tail(log, 40))
		}
	})
	return d
}

func (d *daemon) running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

func (d *daemon) stop(t *testing.T) {
	pid := d.cmd.Process.Pid
	syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Logf("%s (pid %d) ignored SIGTERM for 20s; killing it", d.name, pid)
		syscall.Kill(pid, syscall.SIGKILL)
		<-d.done
	}
	for _, pf := range d.extraPIDFiles {
		killPIDFile(pf)
	}
}

// killPIDFile stops the process a pidfile names, if it still runs.
func killPIDFile(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return
	}
	if syscall.Kill(pid, syscall.SIGTERM) != nil {
		return
	}
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// waitReady polls ready until it succeeds, the daemon dies or 60s pass.
func (d *daemon) waitReady(t *testing.T, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = ready(); err == nil {
			return
		}
		if !d.running() {
			t.Fatalf("%s exited before it was ready (%v); log:\n%s", d.name, err, tail(d.log, 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 60s: %v; log:\n%s", d.name, err, tail(d.log, 40))
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// busyboxTar makes a tar of a busybox rootfs for `docker import` and
// `podman import`.
func busyboxTar(t *testing.T, dir string) string {
	t.Helper()
	busybox := requireTool(t, "busybox")
	rootfs := filepath.Join(dir, "rootfs")
	makeBusyboxRootfs(t, busybox, rootfs)
	tarball := filepath.Join(dir, "busybox.tar")
	mustRun(t, nil, requireTool(t, "tar"), "-C", rootfs, "-cf", tarball, ".")
	return tarball
}

// nvbindCLI runs the nvbind CLI.
func nvbindCLI(t *testing.T, env []string, args ...string) Result {
	t.Helper()
	return runT(t, env, bins.CLI, args...)
}

// wantGPUs checks the /dev listing of a container.
func wantGPUs(t *testing.T, what string, res Result, want ...string) {
	t.Helper()
	if res.Code != 0 {
		t.Fatalf("%s: %s", what, res)
	}
	if got := gpuNodes(res.Stdout); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: container sees GPUs %v, want %v\n%s", what, got, want, res.Stdout)
	}
}

func fileContains(t *testing.T, path string, want ...string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(string(data), w) {
			t.Errorf("%s lacks %q:\n%s", path, w, data)
		}
	}
	return string(data)
}

// quoteTOML quotes a plain path the way TOML does (Go's quoting agrees for
// printable ASCII).
func quoteTOML(s string) string { return strconv.Quote(s) }

// noRuncContainers fails the test when runc still knows containers under
// root: the engine's delete did not reach runc.
func noRuncContainers(t *testing.T, root string) {
	t.Helper()
	if _, err := os.Stat(root); err != nil {
		return
	}
	if left := containers(t, root); left != "" {
		t.Errorf("runc still has containers under %s (delete did not reach runc): %s", root, strings.ReplaceAll(left, "\n", " "))
	}
}

// podmanImage is the busybox image privatePodman imports.
const podmanImage = "localhost/nvbind-busybox:test"

// privatePodman is rootful Podman on a private store under dir, set up by
// the containers.conf conf, with the busybox image imported. Podman keeps
// runc's state in runc's default root (its exit command passes no private
// one on), so it tracks its containers by id and removes them, and runc's
// state of them, at cleanup.
type privatePodman struct {
	t        *testing.T
	bin, dir string
	env      []string
	// Extra are more global flags (--hooks-dir); a test may change them.
	Extra []string
	ids   []string
}

func newPrivatePodman(t *testing.T, dir, conf string, extra ...string) *privatePodman {
	t.Helper()
	p := &privatePodman{t: t, bin: requireTool(t, "podman"), dir: dir, env: []string{"CONTAINERS_CONF=" + conf}, Extra: extra}
	t.Cleanup(func() {
		p.Cmd("rm", "--all", "--force")
		for _, id := range p.ids {
			exec.Command("runc", "delete", "--force", id).Run()
		}
	})
	if r := p.Cmd("import", busyboxTar(t, dir), podmanImage); r.Code != 0 {
		t.Fatalf("podman import: %s", r)
	}
	return p
}

// Cmd runs podman with the private store's global flags.
func (p *privatePodman) Cmd(args ...string) Result {
	p.t.Helper()
	base := append([]string{"--root", filepath.Join(p.dir, "root"), "--runroot", filepath.Join(p.dir, "run"),
		"--storage-driver", "vfs", "--tmpdir", filepath.Join(p.dir, "tmp")}, p.Extra...)
	return runT(p.t, p.env, p.bin, append(base, args...)...)
}

// Run is `podman run --rm` without a network, within the sandbox's rlimits,
// its container tracked for cleanup.
func (p *privatePodman) Run(args ...string) Result {
	p.t.Helper()
	cidfile, track := p.CIDFile()
	defer track()
	return p.Cmd(append([]string{"run", "--rm", "--cidfile", cidfile, "--network", "none",
		"--ulimit", ulimitNofile, "--ulimit", ulimitNproc}, args...)...)
}

// CIDFile is a fresh --cidfile for a container started some other way;
// call track once it has run.
func (p *privatePodman) CIDFile() (path string, track func()) {
	path = filepath.Join(p.dir, fmt.Sprintf("cid-%d", len(p.ids)))
	return path, func() {
		if cid, err := os.ReadFile(path); err == nil {
			p.ids = append(p.ids, strings.TrimSpace(string(cid)))
		}
	}
}
