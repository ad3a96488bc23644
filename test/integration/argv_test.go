package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// gpu0Bundle is a bundle that asks for GPU 0 and lists /dev.
func gpu0Bundle(t *testing.T) *Bundle {
	t.Helper()
	b := newBundle(t, "ls", "/dev")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0")
	b.Save(t)
	return b
}

// TestArgvRefusesWhatItCannotParse: a create whose command line
// nvbind-runtime cannot parse exactly as the runtime would is refused with
// one line naming the flag; the bundle is untouched and no container made.
// Before, an unknown global flag's value became the verb and the container
// ran without its GPU.
func TestArgvRefusesWhatItCannotParse(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	for _, tt := range []struct {
		name string
		args func(b *Bundle, id string) []string
		want string
	}{
		{"unknown valued global", func(b *Bundle, id string) []string {
			return []string{"--log-level", "debug", "--root", s.RunRoot, "create", "--bundle", b.Dir, id}
		}, "--log-level"},
		{"crun's --cgroup-manager given to runc", func(b *Bundle, id string) []string {
			return []string{"--cgroup-manager", "systemd", "--root", s.RunRoot, "run", "--bundle", b.Dir, id}
		}, "--cgroup-manager"},
		{"unknown create flag", func(b *Bundle, id string) []string {
			return []string{"--root", s.RunRoot, "create", "--bogus", "x", "--bundle", b.Dir, id}
		}, "--bogus"},
		// runc (urfave/cli) refuses this too: --no-pivot takes ID along as
		// its possible value, and flag parsing stops there.
		{"flag after the container ID", func(b *Bundle, id string) []string {
			return []string{"--root", s.RunRoot, "create", "--no-pivot", id, "--bundle", b.Dir}
		}, "--bundle after the container ID"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := gpu0Bundle(t)
			before := b.ReadConfig(t)
			id := fmt.Sprintf("nvbind-argv-%d", containerSeq.Add(1))
			t.Cleanup(func() { runCmd(t, nil, "runc", "--root", s.RunRoot, "delete", "--force", id) })
			res := runRuntime(t, s.Env(), tt.args(b, id)...)
			if res.Code == 0 {
				t.Fatalf("accepted: %s", res)
			}
			lines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "nvbind-runtime: ") || !strings.Contains(lines[0], tt.want) {
				t.Errorf("want one nvbind-runtime line naming %s, got %q", tt.want, res.Stderr)
			}
			if after := b.ReadConfig(t); !bytes.Equal(before, after) {
				t.Errorf("config.json changed")
			}
			if left := containers(t, s.RunRoot); left != "" {
				t.Errorf("containers left: %s", left)
			}
		})
	}
}

// TestArgvBooleanForms: runc's booleans take what strconv.ParseBool takes.
func TestArgvBooleanForms(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	for _, form := range []string{"--debug=TRUE", "--debug=t", "-debug=0", "--systemd-cgroup=false"} {
		b := gpu0Bundle(t)
		id := fmt.Sprintf("nvbind-argv-%d", containerSeq.Add(1))
		t.Cleanup(func() { runCmd(t, nil, "runc", "--root", s.RunRoot, "delete", "--force", id) })
		res := runRuntime(t, s.Env(), form, "--root", s.RunRoot, "run", "--bundle", b.Dir, id)
		if res.Code != 0 {
			t.Fatalf("%s: %s", form, res)
		}
		if got := gpuNodes(res.Stdout); strings.Join(got, " ") != "nvidia0" {
			t.Errorf("%s: container sees %v, want [nvidia0]", form, got)
		}
	}
}

// TestArgvRestoreIsIntercepted: restore starts a container from the
// bundle's spec, so the spec gets its GPUs as for create. (runc then fails
// here: there is no checkpoint to restore.)
func TestArgvRestoreIsIntercepted(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	b := gpu0Bundle(t)
	id := fmt.Sprintf("nvbind-argv-%d", containerSeq.Add(1))
	t.Cleanup(func() { runCmd(t, nil, "runc", "--root", s.RunRoot, "delete", "--force", id) })
	runRuntime(t, s.Env(), "--root", s.RunRoot, "restore", "--image-path", t.TempDir(), "--bundle", b.Dir, id)
	if spec := decodeSpec(t, b.ReadConfig(t)); !hasDevice(spec.Linux.Devices, "/dev/nvidia0") {
		t.Errorf("restore's spec did not get GPU 0: %+v", spec.Linux.Devices)
	}
}

// TestArgvDeleteReachesRecordedRuntime: with config.toml broken after a
// create, kill and delete go to the runtime that created the container
// (here a wrapper around runc that logs its calls), not to the built-in
// default list.
func TestArgvDeleteReachesRecordedRuntime(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	wrapper := filepath.Join(dir, "wrapped-runc")
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\nexec runc \"$@\"\n", calls)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(s.Config)
	os.WriteFile(s.Config, bytes.Replace(cfg, []byte(`runtimes = ["runc"]`), []byte(fmt.Sprintf("runtimes = [%q]", wrapper)), 1), 0o644)
	b := newBundle(t, "sleep", "30")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0")
	b.Save(t)
	id := fmt.Sprintf("nvbind-argv-%d", containerSeq.Add(1))
	t.Cleanup(func() { runCmd(t, nil, "runc", "--root", s.RunRoot, "delete", "--force", id) })
	rt := func(args ...string) Result {
		return runRuntime(t, s.Env(), append([]string{"--root", s.RunRoot}, args...)...)
	}
	if res := rt("create", "--bundle", b.Dir, id); res.Code != 0 {
		t.Fatalf("create: %s", res)
	}
	if err := os.WriteFile(s.Config, []byte("[runtime\nbroken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := rt("kill", id, "KILL"); res.Code != 0 {
		t.Fatalf("kill: %s", res)
	}
	waitFor(5e9, func() bool { return strings.Contains(rt("state", id).Stdout, "stopped") })
	if res := rt("delete", "--force", id); res.Code != 0 {
		t.Fatalf("delete: %s", res)
	}
	log, _ := os.ReadFile(calls)
	for _, verb := range []string{"create", "kill", "state", "delete"} {
		if !strings.Contains(string(log), verb+" ") {
			t.Errorf("%s did not reach the runtime that created the container; it saw:\n%s", verb, log)
		}
	}
	if left := containers(t, s.RunRoot); left != "" {
		t.Errorf("containers left: %s", left)
	}
	if entries, _ := os.ReadDir(s.RunRoot); len(entries) != 0 {
		t.Errorf("left in the runtime root: %v", entries)
	}
}

// TestArgvCrunConfig: crun's `create --config FILE` names the spec crun
// reads, so that is the file nvbind edits. A stand-in named crun records
// the spec it was given.
func TestArgvCrunConfig(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	dir := t.TempDir()
	seen := filepath.Join(dir, "seen.json")
	fake := filepath.Join(dir, "crun")
	script := fmt.Sprintf("#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = --config ] && cp \"$2\" %s; shift; done\n", seen)
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(s.Config)
	os.WriteFile(s.Config, bytes.Replace(cfg, []byte(`runtimes = ["runc"]`), []byte(fmt.Sprintf("runtimes = [%q]", fake)), 1), 0o644)
	b := newBundle(t, "true") // no request in the bundle's own config.json
	other := gpu0Bundle(t)    // the spec given with --config asks for GPU 0
	before := b.ReadConfig(t)
	res := runRuntime(t, s.Env(), "--root", s.RunRoot, "--cgroup-manager", "cgroupfs", "create",
		"--config", other.ConfigPath(), "--bundle", b.Dir, "nvbind-argv-crun")
	if res.Code != 0 {
		t.Fatalf("create: %s", res)
	}
	data, err := os.ReadFile(seen)
	if err != nil {
		t.Fatalf("crun got no --config: %v", err)
	}
	if !hasDevice(decodeSpec(t, data).Linux.Devices, "/dev/nvidia0") {
		t.Errorf("the --config spec did not get GPU 0")
	}
	if !bytes.Equal(before, b.ReadConfig(t)) {
		t.Errorf("the bundle's own config.json was edited instead")
	}
}

// hasDevice reports whether devices holds a node at path.
func hasDevice(devices []rspec.LinuxDevice, path string) bool {
	for _, d := range devices {
		if d.Path == path {
			return true
		}
	}
	return false
}
