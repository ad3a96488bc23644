package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// gpuNodes returns the /dev/nvidia<N> names listed in ls output.
func gpuNodes(ls string) []string {
	var out []string
	for _, f := range strings.Fields(ls) {
		if strings.HasPrefix(f, "nvidia") && strings.TrimLeft(f[len("nvidia"):], "0123456789") == "" && f != "nvidia" {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

func TestRuntimeInjectsGPUs(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 4)
	tests := []struct {
		name        string
		env         []string
		annotations map[string]string
		want        []string
	}{
		{"all", []string{"NVIDIA_VISIBLE_DEVICES=all"}, nil, []string{"nvidia0", "nvidia1", "nvidia2", "nvidia3"}},
		{"one index", []string{"NVIDIA_VISIBLE_DEVICES=2"}, nil, []string{"nvidia2"}},
		{"index list", []string{"NVIDIA_VISIBLE_DEVICES=0,3"}, nil, []string{"nvidia0", "nvidia3"}},
		{"one uuid", []string{"NVIDIA_VISIBLE_DEVICES=" + s.UUIDs[1]}, nil, []string{"nvidia1"}},
		{"cdi annotation", nil, map[string]string{"cdi.k8s.io/test": "nvidia.com/gpu=3"}, []string{"nvidia3"}},
		{"unqualified annotation", nil, map[string]string{"cdi.k8s.io/test": "1"}, []string{"nvidia1"}},
		{"none: driver only", []string{"NVIDIA_VISIBLE_DEVICES=none"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBundle(t, "sh", "-c", "ls /dev; echo ctl=$(stat -c %t:%T /dev/nvidiactl)")
			b.SetEnv(tt.env...)
			b.Spec.Annotations = tt.annotations
			b.Save(t)
			res := runContainer(t, s, b)
			if res.Code != 0 {
				t.Fatalf("container failed: %s", res)
			}
			if got := gpuNodes(res.Stdout); strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("container sees GPUs %v, want %v\n%s", got, tt.want, res.Stdout)
			}
			// nvidiactl is char 195:255 (hex c3:ff), from the spec's common edits.
			if !strings.Contains(res.Stdout, "ctl=c3:ff") {
				t.Errorf("container lacks /dev/nvidiactl 195:255:\n%s", res.Stdout)
			}
			if res.Stderr != "" {
				t.Errorf("nvbind-runtime wrote to the container's stderr: %q", res.Stderr)
			}
			spec := string(b.ReadConfig(t))
			if len(tt.want) > 0 && !strings.Contains(spec, `"major":195`) {
				t.Errorf("rewritten spec has no cgroup device rule for major 195")
			}
		})
	}
}

func TestRuntimeDeviceCgroupRules(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 2)
	b := newBundle(t, "true")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=1")
	b.Save(t)
	if res := runContainer(t, s, b); res.Code != 0 {
		t.Fatalf("container failed: %s", res)
	}
	spec, err := os.ReadFile(b.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	got := decodeSpec(t, spec)
	allowed := map[[2]int64]bool{}
	for _, d := range got.Linux.Resources.Devices {
		if d.Allow && d.Type == "c" && d.Major != nil && d.Minor != nil {
			allowed[[2]int64{*d.Major, *d.Minor}] = true
		}
	}
	for _, want := range [][2]int64{{195, 1}, {195, 255}} {
		if !allowed[want] {
			t.Errorf("no cgroup allow rule for c %d:%d in %+v", want[0], want[1], got.Linux.Resources.Devices)
		}
	}
	if allowed[[2]int64{195, 0}] {
		t.Errorf("GPU 0 allowed although only GPU 1 was asked for")
	}
}

func TestRuntimeNoRequestLeavesBundleUntouched(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 2)
	b := newBundle(t, "ls", "/dev")
	before := b.ReadConfig(t)
	res := runContainer(t, s, b)
	if res.Code != 0 {
		t.Fatalf("container failed: %s", res)
	}
	if len(gpuNodes(res.Stdout)) > 0 || strings.Contains(res.Stdout, "nvidiactl") {
		t.Errorf("container without a request sees NVIDIA nodes:\n%s", res.Stdout)
	}
	if after := b.ReadConfig(t); !bytes.Equal(before, after) {
		t.Errorf("config.json changed for a container without a GPU request")
	}
}

func TestRuntimeBadRequests(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 2)
	assertRequestsRefused(t, s, []badRequest{
		{"unknown index", []string{"NVIDIA_VISIBLE_DEVICES=7"}, nil, "",
			[]string{"nvidia.com/gpu=7", s.SpecDir}},
		{"unknown uuid", []string{"NVIDIA_VISIBLE_DEVICES=GPU-deadbeef-0000"}, nil, "",
			[]string{"nvidia.com/gpu=GPU-deadbeef-0000", s.SpecDir}},
		{"unknown cdi kind", nil, map[string]string{"cdi.k8s.io/x": "example.com/nic=eth0"}, "",
			[]string{"example.com/nic=eth0", s.SpecDir}},
		{"path-like request", []string{"NVIDIA_VISIBLE_DEVICES=../../dev/sda"}, nil, "",
			[]string{`invalid device "../../dev/sda"`}},
		{"bad capability", []string{"NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute,bogus"}, nil, "",
			[]string{`unknown capability "bogus"`}},
		{"truncated config.json", nil, nil, `{"ociVersion":"1.2.0","process":{"env":["NVIDIA_VISIBLE_DEVICES=0"`,
			[]string{"invalid config.json"}},
	})
}

func TestRuntimePassesOtherVerbsThrough(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	for _, args := range [][]string{{"--version"}, {"features"}, {"--root", s.RunRoot, "list"}, {"--help"}} {
		want := runCmd(t, nil, "runc", args...)
		got := runRuntime(t, s.Env(), args...)
		if got.Code != want.Code || got.Stdout != want.Stdout {
			t.Errorf("%v: nvbind-runtime gave %s\nrunc gave %s", args, got, want)
		}
	}
	// state of an unknown container: runc's own error and exit code.
	want := runCmd(t, nil, "runc", "--root", s.RunRoot, "state", "nope")
	got := runRuntime(t, s.Env(), "--root", s.RunRoot, "state", "nope")
	if got.Code != want.Code || withoutTime(got.Stderr) != withoutTime(want.Stderr) {
		t.Errorf("state: nvbind-runtime gave %s\nrunc gave %s", got, want)
	}
}

// withoutTime drops the time="..." field of runc's log lines, which
// differs between two runs.
func withoutTime(s string) string {
	return regexp.MustCompile(`time="[^"]*" `).ReplaceAllString(s, "")
}

func TestRuntimeCreateStartLifecycle(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 2)
	b := newBundle(t, "sh", "-c", "ls /dev > /tmp/seen; sleep 30")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=1")
	b.Save(t)
	id := "nvbind-it-lifecycle"
	t.Cleanup(func() { runCmd(t, nil, "runc", "--root", s.RunRoot, "delete", "--force", id) })
	rt := func(args ...string) Result {
		return runRuntime(t, s.Env(), append([]string{"--root", s.RunRoot}, args...)...)
	}
	if res := rt("create", "--bundle", b.Dir, "--pid-file", filepath.Join(b.Dir, "pid"), id); res.Code != 0 {
		t.Fatalf("create: %s", res)
	}
	if res := rt("start", id); res.Code != 0 {
		t.Fatalf("start: %s", res)
	}
	if res := rt("state", id); res.Code != 0 || !strings.Contains(res.Stdout, `"status": "running"`) {
		t.Fatalf("state: %s", res)
	}
	var seen string
	waitFor(5e9, func() bool {
		r := rt("exec", id, "cat", "/tmp/seen")
		seen = r.Stdout
		return r.Code == 0 && seen != ""
	})
	if got := gpuNodes(seen); strings.Join(got, " ") != "nvidia1" {
		t.Errorf("container sees %v, want [nvidia1]", got)
	}
	if res := rt("kill", id, "KILL"); res.Code != 0 {
		t.Fatalf("kill: %s", res)
	}
	waitFor(5e9, func() bool { return strings.Contains(rt("state", id).Stdout, "stopped") })
	if res := rt("delete", id); res.Code != 0 {
		t.Fatalf("delete: %s", res)
	}
	if left := containers(t, s.RunRoot); left != "" {
		t.Errorf("containers left: %s", left)
	}
}

// TestRuntimePassthroughInit: a create without a request is handed to the
// runtime while nvbind-runtime initialises, before the packages only the
// GPU path needs run their init (cmd/nvbind-runtime/internal/passthrough);
// a create with a request still goes through main, which edits the spec.
// GODEBUG=inittrace=1 lists each package initialised; the order is the
// linker's, so this needs the built program. The runtime is a script that
// says it ran (runc, a Go program, would add its own init trace).
func TestRuntimePassthroughInit(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	dir := t.TempDir()
	runtime := filepath.Join(dir, "runc")
	os.WriteFile(runtime, []byte("#!/bin/sh\necho \"runtime ran: $*\"\n"), 0o755)
	data, err := os.ReadFile(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	// Debug logging would take main's path, which logs "no GPU request".
	cfg := strings.NewReplacer(`runtimes = ["runc"]`, `runtimes = ["`+runtime+`"]`, `log-level = "debug"`, `log-level = "info"`).Replace(string(data))
	if !strings.Contains(cfg, runtime) || !strings.Contains(cfg, `log-level = "info"`) {
		t.Fatalf("unexpected test config:\n%s", data)
	}
	os.WriteFile(s.Config, []byte(cfg), 0o644)
	heavy := []string{"github.com/nvbind/nvbind/internal/", "go.yaml.in/yaml", "tags.cncf.io/", "github.com/godbus/dbus",
		"github.com/opencontainers/cgroups", "github.com/sirupsen/logrus", "golang.org/x/sys/unix", "crypto/sha256", "encoding/json", "regexp"}
	light := map[string]bool{"github.com/nvbind/nvbind/internal/handoff": true, "github.com/nvbind/nvbind/internal/configcore": true,
		"github.com/nvbind/nvbind/internal/ldcache": true}

	b := newBundle(t, "true")
	before := b.ReadConfig(t)
	env := append(s.Env(), "GODEBUG=inittrace=1")
	args := []string{"--root", s.RunRoot, "create", "--bundle", b.Dir, "plain"}
	r := runRuntime(t, env, args...)
	if r.Code != 0 || r.Stdout != "runtime ran: "+strings.Join(args, " ")+"\n" {
		t.Fatalf("create without a request: %s", r)
	}
	if !strings.Contains(r.Stderr, "init os @") {
		t.Fatalf("no init trace: %s", r.Stderr)
	}
	for _, line := range strings.Split(r.Stderr, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "init" || light[f[1]] {
			continue
		}
		for _, pkg := range heavy {
			if strings.HasPrefix(f[1], pkg) {
				t.Errorf("%s initialised before the passthrough handed the create on:\n%s", f[1], r.Stderr)
			}
		}
	}
	if after := b.ReadConfig(t); !bytes.Equal(before, after) {
		t.Errorf("config.json changed for a container without a GPU request")
	}
	if got, err := os.Readlink(filepath.Join(s.RunRoot, ".nvbind-runtime.plain")); err != nil || got != runtime {
		t.Errorf("runtime record: %q %v, want %s", got, err, runtime)
	}

	// With a request: main, after every package's init, edits the spec.
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0")
	b.Save(t)
	args[len(args)-1] = "gpu"
	r = runRuntime(t, env, args...)
	if r.Code != 0 || r.Stdout != "runtime ran: "+strings.Join(args, " ")+"\n" {
		t.Fatalf("create with a request: %s", r)
	}
	if !strings.Contains(r.Stderr, "init go.yaml.in/yaml") || !strings.Contains(r.Stderr, "init github.com/nvbind/nvbind/internal/profiles") {
		t.Errorf("create with a request did not initialise the GPU path's packages:\n%s", r.Stderr)
	}
	if !strings.Contains(string(b.ReadConfig(t)), "/dev/nvidia0") {
		t.Errorf("config.json of a GPU request not edited:\n%s", b.ReadConfig(t))
	}
}
