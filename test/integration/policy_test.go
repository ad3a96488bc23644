package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// policyConfig returns a [policy] table with the audit log in a temp dir,
// and the log's path.
func policyConfig(t *testing.T, preset, rules string) (string, string) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "audit", "audit.log")
	return fmt.Sprintf("\n[policy]\npreset = %q\naudit-log = %q\n%s", preset, log, rules), log
}

// gpuBundle is a bundle listing /dev, asking with env and annotations.
func gpuBundle(t *testing.T, env []string, annotations map[string]string) *Bundle {
	t.Helper()
	b := newBundle(t, "ls", "/dev")
	b.SetEnv(env...)
	b.Spec.Annotations = annotations
	b.Save(t)
	return b
}

// seesGPUs runs b and checks the container sees exactly want.
func seesGPUs(t *testing.T, s *SimRoot, b *Bundle, want ...string) {
	t.Helper()
	res := runContainer(t, s, b)
	if res.Code != 0 {
		t.Fatalf("container failed: %s", res)
	}
	if got := gpuNodes(res.Stdout); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("container sees GPUs %v, want %v", got, want)
	}
}

func refused(t *testing.T, s *SimRoot, b *Bundle, want ...string) {
	t.Helper()
	before := b.ReadConfig(t)
	assertRefused(t, s, b, before, runContainer(t, s, b), want...)
}

// TestPolicyPrecedence: the always-on rules, with no [policy] table.
func TestPolicyPrecedence(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 4)
	t.Run("device plugin annotation is not widened by env", func(t *testing.T) {
		b := gpuBundle(t, []string{"NVIDIA_VISIBLE_DEVICES=all"}, map[string]string{"cdi.k8s.io/nvidia-device-plugin_0": "nvidia.com/gpu=2"})
		seesGPUs(t, s, b, "nvidia2")
		logData, _ := os.ReadFile(s.LogFile())
		if !strings.Contains(string(logData), "NVIDIA_VISIBLE_DEVICES ignored (nvidia.com/gpu=all): the annotation request wins") {
			t.Errorf("no log line for the ignored env:\n%s", logData)
		}
	})
	t.Run("volume-mount list", func(t *testing.T) {
		b := gpuBundle(t, []string{"NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices"}, nil)
		for _, id := range []string{"1", "cdi/nvidia.com/gpu=3"} {
			b.Spec.Mounts = append(b.Spec.Mounts, specMount("/dev/null", "/var/run/nvidia-container-devices/"+id))
		}
		b.Save(t)
		seesGPUs(t, s, b, "nvidia1", "nvidia3")
	})
	t.Run("volume-mount list wins over env", func(t *testing.T) {
		b := gpuBundle(t, []string{"NVIDIA_VISIBLE_DEVICES=all"}, nil)
		b.Spec.Mounts = append(b.Spec.Mounts, specMount("/dev/null", "/var/run/nvidia-container-devices/0"))
		b.Save(t)
		seesGPUs(t, s, b, "nvidia0")
	})
	t.Run("volume-mount root in env without mounts: no GPU, no error", func(t *testing.T) {
		b := gpuBundle(t, []string{"NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices"}, nil)
		before := b.ReadConfig(t)
		seesGPUs(t, s, b)
		if string(before) != string(b.ReadConfig(t)) {
			t.Error("config.json changed for a pod that asked for no GPU")
		}
	})
	t.Run("another vendor's device through env is refused", func(t *testing.T) {
		b := gpuBundle(t, []string{"NVIDIA_VISIBLE_DEVICES=vendor.com/fpga=0"}, nil)
		refused(t, s, b, `policy rule "default"`, "NVIDIA_VISIBLE_DEVICES may name only nvidia.com/gpu devices, not vendor.com/fpga=0")
	})
}

func specMount(src, dst string) rspec.Mount {
	return rspec.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"bind", "ro"}}
}

func TestPolicyPresets(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 2)
	env := []string{"NVIDIA_VISIBLE_DEVICES=all"}
	t.Run("workstation allows env all", func(t *testing.T) {
		cfg, _ := policyConfig(t, "workstation", "")
		s.WriteConfig(t, cfg)
		seesGPUs(t, s, gpuBundle(t, env, nil), "nvidia0", "nvidia1")
	})
	t.Run("server refuses env all from an unprivileged container", func(t *testing.T) {
		cfg, log := policyConfig(t, "server", "")
		s.WriteConfig(t, cfg)
		b := gpuBundle(t, env, nil)
		refused(t, s, b, `policy rule "server" refuses devices nvidia.com/gpu=all (from env)`, "not allowed for an unprivileged container")
		recs := readAudit(t, log)
		if len(recs) != 1 || recs[0]["decision"] != "refused" || recs[0]["rule"] != "server" || recs[0]["configSha256After"] != nil {
			t.Errorf("audit = %v, want one refusal by rule server without an after hash", recs)
		}
	})
	t.Run("server allows env all from a privileged container", func(t *testing.T) {
		cfg, _ := policyConfig(t, "server", "")
		s.WriteConfig(t, cfg)
		b := gpuBundle(t, env, nil)
		b.Spec.Process.Capabilities.Bounding = append(b.Spec.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
		b.Save(t)
		seesGPUs(t, s, b, "nvidia0", "nvidia1")
	})
	t.Run("server allows a device plugin annotation", func(t *testing.T) {
		cfg, _ := policyConfig(t, "server", "")
		s.WriteConfig(t, cfg)
		seesGPUs(t, s, gpuBundle(t, env, map[string]string{"cdi.k8s.io/dp": "nvidia.com/gpu=1"}), "nvidia1")
	})
	t.Run("server: cache-dir=/ refused, bundle unchanged", func(t *testing.T) {
		cfg, _ := policyConfig(t, "server", "")
		s.WriteConfig(t, cfg)
		b := gpuBundle(t, nil, map[string]string{"cdi.k8s.io/dp": "nvidia.com/gpu=0", "nvbind.io/profile": "ml", "nvbind.io/profile.cache-dir": "/"})
		refused(t, s, b, "profile parameter cache-dir=/ is outside the allowed host paths")
	})
	t.Run("server: input=true refused even where gaming is allowed", func(t *testing.T) {
		cfg, _ := policyConfig(t, "server", "[[policy.rules]]\nname = \"games\"\nallow.profiles = [\"gaming\"]\n")
		s.WriteConfig(t, cfg)
		b := gpuBundle(t, nil, map[string]string{"cdi.k8s.io/dp": "nvidia.com/gpu=0", "nvbind.io/profile": "gaming", "nvbind.io/profile.input": "true"})
		refused(t, s, b, `policy rule "games"`, "input=true hands over host devices")
	})
	t.Run("malformed policy fails create closed", func(t *testing.T) {
		s.WriteConfig(t, "\n[policy]\npreset = \"server\"\n[[policy.rules]]\nmatch.engines = [\"lxc\"]\n")
		b := gpuBundle(t, env, nil)
		refused(t, s, b, "policy.rules[0]: match.engines")
		lint := runCmd(t, s.Env(), bins.CLI, "policy", "lint")
		if lint.Code != 1 || !strings.Contains(lint.Stderr, "policy.rules[0]: match.engines") {
			t.Errorf("policy lint: %s", lint)
		}
		doc := runCmd(t, s.Env(), bins.CLI, "doctor", "--no-nvml")
		if doc.Code != 1 || !strings.Contains(doc.Stdout, "FAIL  policy") {
			t.Errorf("doctor does not fail on the policy: %s", doc)
		}
	})
	t.Run("server: unwritable audit log fails closed, workstation warns", func(t *testing.T) {
		notDir := filepath.Join(t.TempDir(), "file")
		os.WriteFile(notDir, nil, 0o600)
		bad := fmt.Sprintf("\n[policy]\npreset = %%q\naudit-log = %q\n", filepath.Join(notDir, "audit.log"))
		s.WriteConfig(t, fmt.Sprintf(bad, "server"))
		b := gpuBundle(t, nil, map[string]string{"cdi.k8s.io/dp": "nvidia.com/gpu=0"})
		refused(t, s, b, "audit log", "preset server requires the audit log")
		s.WriteConfig(t, fmt.Sprintf(bad, "workstation"))
		seesGPUs(t, s, b, "nvidia0")
	})
}

func TestPolicyRules(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 4)
	cfg, log := policyConfig(t, "server", `
[[policy.rules]]
name = "team-a"
match.namespaces = ["team-a"]
allow.max-devices = 1
`)
	s.WriteConfig(t, cfg)
	ns := func(devs string) map[string]string {
		return map[string]string{"io.kubernetes.cri.sandbox-namespace": "team-a", "io.kubernetes.cri.sandbox-name": "trainer", "cdi.k8s.io/dp": devs}
	}
	seesGPUs(t, s, gpuBundle(t, nil, ns("nvidia.com/gpu=3")), "nvidia3")
	refused(t, s, gpuBundle(t, nil, ns("nvidia.com/gpu=0,nvidia.com/gpu=1")), `policy rule "team-a"`, "2 devices are more than the 1 allowed")
	other := ns("nvidia.com/gpu=0,nvidia.com/gpu=1")
	other["io.kubernetes.cri.sandbox-namespace"] = "team-b"
	seesGPUs(t, s, gpuBundle(t, nil, other), "nvidia0", "nvidia1")

	recs := readAudit(t, log)
	if len(recs) != 3 {
		t.Fatalf("audit has %d records, want 3", len(recs))
	}
	first := recs[0]
	tenant, _ := first["tenant"].(map[string]any)
	if first["decision"] != "allowed" || tenant["key"] != "team-a" || tenant["pod"] != "trainer" || first["driverVersion"] != "580.95.05" ||
		first["configSha256Before"] == first["configSha256After"] || first["container"] == "" {
		t.Errorf("first record = %v", first)
	}
	// The chain verifies; a hand-edited line is named.
	if res := runCmd(t, nil, bins.CLI, "audit", "verify", log); res.Code != 0 || !strings.Contains(res.Stdout, "ok: 3 lines") {
		t.Fatalf("audit verify: %s", res)
	}
	show := runCmd(t, nil, bins.CLI, "audit", "show", "--container", first["container"].(string), "--json", log)
	if show.Code != 0 || strings.Count(show.Stdout, "\n") != 1 || !strings.Contains(show.Stdout, `"team-a"`) {
		t.Errorf("audit show --container: %s", show)
	}
	data, _ := os.ReadFile(log)
	os.WriteFile(log, []byte(strings.Replace(string(data), `"decision":"refused"`, `"decision":"allowed"`, 1)), 0o600)
	res := runCmd(t, nil, bins.CLI, "audit", "verify", log)
	if res.Code != 1 || !strings.Contains(res.Stderr, log+":2: hash mismatch") {
		t.Errorf("audit verify after an edit of line 2: %s", res)
	}
}

// TestPolicyCallerUID runs nvbind-runtime as uid 1000, as rootless Podman
// runs it, under a rule for that caller. The low-level runtime is a stub
// (rootless runc needs a user namespace set-up this test does not need):
// what matters is the spec it is handed.
func TestPolicyCallerUID(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 4)
	dir := t.TempDir()
	// uid 1000 must reach the binaries, the config, the simulated driver
	// and the bundles: open the test's temp dirs for reading.
	for _, d := range []string{dir, filepath.Dir(dir), filepath.Dir(s.Config), filepath.Dir(filepath.Dir(s.Config)), filepath.Dir(bins.Runtime)} {
		os.Chmod(d, 0o755)
	}
	stub := filepath.Join(dir, "stub-runtime")
	os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	auditDir := filepath.Join(dir, "audit")
	os.Mkdir(auditDir, 0o700)
	os.Chown(auditDir, 1000, 1000)
	log := filepath.Join(auditDir, "audit.log")
	s.WriteConfig(t, fmt.Sprintf("\n[policy]\npreset = \"server\"\naudit-log = %q\n[[policy.rules]]\nname = \"lab\"\nmatch.caller-uids = [\"1000-1999\"]\nallow = { env-requests = true, max-devices = 1 }\n", log))
	cfg, _ := os.ReadFile(s.Config)
	cfgText := strings.Replace(string(cfg), `runtimes = ["runc"]`, fmt.Sprintf("runtimes = [%q]", stub), 1)
	cfgText = strings.Replace(cfgText, fmt.Sprintf("log-file = %q", s.LogFile()), `log-file = ""`, 1)
	os.WriteFile(s.Config, []byte(cfgText), 0o644)

	// userns: as rootless Podman does, run the runtime as "root" in a user
	// namespace that maps root to uid 1000.
	run := func(env string, userns bool) (Result, *Bundle) {
		b := gpuBundle(t, []string{env}, nil)
		os.Chmod(filepath.Dir(b.Dir), 0o755)
		os.Chmod(filepath.Dir(filepath.Dir(b.Dir)), 0o755)
		os.Chown(b.Dir, 1000, 1000)
		os.Chown(b.ConfigPath(), 1000, 1000)
		cmd := exec.Command(bins.Runtime, "create", "--bundle", b.Dir, "uid-test")
		if userns {
			cmd = exec.Command(requireTool(t, "unshare"), "--user", "--map-root-user", bins.Runtime, "create", "--bundle", b.Dir, "uid-test")
		}
		cmd.Env = append(os.Environ(), s.Env()...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
		out, err := cmd.CombinedOutput()
		res := Result{Stderr: string(out)}
		if ee, ok := err.(*exec.ExitError); ok {
			res.Code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return res, b
	}
	for _, userns := range []bool{false, true} {
		res, b := run("NVIDIA_VISIBLE_DEVICES=2", userns)
		if res.Code != 0 {
			t.Fatalf("create as uid 1000 (user namespace %v): %s", userns, res)
		}
		spec := decodeSpec(t, b.ReadConfig(t))
		var nodes []string
		for _, d := range spec.Linux.Devices {
			nodes = append(nodes, filepath.Base(d.Path))
		}
		if got := strings.Join(gpuNodes(strings.Join(nodes, " ")), " "); got != "nvidia2" {
			t.Errorf("the spec handed to the runtime has GPUs %q, want nvidia2", got)
		}
		res, _ = run("NVIDIA_VISIBLE_DEVICES=0,1", userns)
		if res.Code != 1 || !strings.Contains(res.Stderr, `policy rule "lab"`) || !strings.Contains(res.Stderr, "2 devices are more than the 1 allowed") {
			t.Errorf("two GPUs as uid 1000 (user namespace %v): %s", userns, res)
		}
	}
	recs := readAudit(t, log)
	if len(recs) != 4 {
		t.Fatalf("audit has %d records, want 4", len(recs))
	}
	for _, r := range recs {
		tenant, _ := r["tenant"].(map[string]any)
		if tenant["key"] != "uid.1000" || tenant["callerUid"] != float64(1000) {
			t.Errorf("tenant = %v, want uid.1000", tenant)
		}
	}
}

// TestPolicyTenantCaches: each namespace gets its own cache directory
// under the administrator's base, owned by the container's user.
func TestPolicyTenantCaches(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	base := filepath.Join(t.TempDir(), "ml-cache")
	os.Mkdir(base, 0o755)
	cfg, _ := policyConfig(t, "server", fmt.Sprintf("[[policy.rules]]\nname = \"caches\"\nallow.path-prefixes = [%q]\n", base+"/"))
	s.WriteConfig(t, cfg)
	run := func(ns, file string) string {
		b := newBundle(t, "sh", "-c", "echo $CUDA_CACHE_PATH; ls /var/cache/nvbind; touch /var/cache/nvbind/"+file)
		b.Spec.Process.User.UID, b.Spec.Process.User.GID = 1000, 1000
		b.Spec.Annotations = map[string]string{"io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.name": "p",
			"cdi.k8s.io/dp": "nvidia.com/gpu=0", "nvbind.io/profile": "ml", "nvbind.io/profile.cache-dir": base}
		b.Save(t)
		res := runContainer(t, s, b)
		if res.Code != 0 {
			t.Fatalf("container failed: %s", res)
		}
		return res.Stdout
	}
	run("team-a", "a-file")
	out := run("team-b", "b-file")
	if strings.Contains(out, "a-file") || !strings.HasPrefix(out, "/var/cache/nvbind\n") {
		t.Errorf("team-b's container sees:\n%s", out)
	}
	for _, tt := range []struct{ ns, file string }{{"team-a", "a-file"}, {"team-b", "b-file"}} {
		dir := filepath.Join(base, tt.ns)
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o700 || st.Uid != 1000 || st.Gid != 1000 {
			t.Errorf("%s: mode %v owner %d:%d, want 0700 1000:1000", dir, fi.Mode().Perm(), st.Uid, st.Gid)
		}
		if _, err := os.Stat(filepath.Join(dir, tt.file)); err != nil {
			t.Errorf("the container's cache file is not in its tenant dir: %v", err)
		}
	}
	if entries, _ := os.ReadDir(base); len(entries) != 2 {
		t.Errorf("base holds %d entries, want the 2 tenant dirs", len(entries))
	}
}

func TestPolicyCheckCLI(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 2)
	cfg, log := policyConfig(t, "server", "")
	s.WriteConfig(t, cfg)
	b := gpuBundle(t, []string{"NVIDIA_VISIBLE_DEVICES=all"}, nil)
	before := b.ReadConfig(t)
	res := runCmd(t, s.Env(), bins.CLI, "policy", "check", "--bundle", b.Dir)
	if res.Code != 1 || !strings.Contains(res.Stdout, "decision: refused") || !strings.Contains(res.Stdout, "rule:     server") {
		t.Errorf("policy check of a refused bundle: %s", res)
	}
	b2 := gpuBundle(t, []string{"NVIDIA_VISIBLE_DEVICES=all"}, map[string]string{"cdi.k8s.io/dp": "nvidia.com/gpu=1"})
	res = runCmd(t, s.Env(), bins.CLI, "policy", "check", "--config-json", b2.ConfigPath(), "--json")
	var rep struct {
		Decision string
		Rule     string
		Edits    []string
	}
	if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil || res.Code != 0 {
		t.Fatalf("policy check --json: %v: %s", err, res)
	}
	if rep.Decision != "narrowed" || rep.Rule != "server" || !strings.Contains(strings.Join(rep.Edits, "\n"), "device /dev/nvidia1") ||
		strings.Contains(strings.Join(rep.Edits, "\n"), "/dev/nvidia0 ") {
		t.Errorf("report = %+v", rep)
	}
	if string(before) != string(b.ReadConfig(t)) {
		t.Error("policy check changed config.json")
	}
	// A rule for a rootless caller, checked on its behalf.
	cfg, _ = policyConfig(t, "server", "[[policy.rules]]\nname = \"lab\"\nmatch.caller-uids = [\"1000\"]\nallow.env-requests = true\n")
	s.WriteConfig(t, cfg)
	res = runCmd(t, s.Env(), bins.CLI, "policy", "check", "--bundle", b.Dir, "--caller-uid", "1000")
	if res.Code != 0 || !strings.Contains(res.Stdout, "decision: allowed") || !strings.Contains(res.Stdout, "rule:     lab") ||
		!strings.Contains(res.Stdout, "tenant:   uid.1000") || !strings.Contains(res.Stdout, "device /dev/nvidia1") {
		t.Errorf("policy check --caller-uid 1000: %s", res)
	}
	if _, err := os.Stat(log); !os.IsNotExist(err) {
		t.Error("policy check wrote the audit log")
	}
}

func readAudit(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestPolicyPodman: the server policy through a real engine. Podman passes
// its annotation to the spec and marks it io.container.manager=libpod;
// the image-style env request is refused with nvbind's line in Podman's
// error, the annotation request is served, and the audit names the engine.
func TestPolicyPodman(t *testing.T) {
	requireRoot(t)
	requireTool(t, "podman")
	requireTool(t, "conmon")
	s := newSimRoot(t, 4)
	dir := shortTempDir(t, "nvb-podpol-")
	cfg, log := policyConfig(t, "server", "")
	s.WriteConfig(t, cfg)
	conf := filepath.Join(dir, "containers.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nconmon_env_vars = [\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\", %q]\n", "NVBIND_CONFIG="+s.Config)), 0o644)
	if r := nvbindCLI(t, nil, "runtime", "configure", "--runtime", "podman", "--config", conf, "--path", bins.Runtime); r.Code != 0 {
		t.Fatalf("configure: %s", r)
	}
	p := newPrivatePodman(t, dir, conf)
	run := func(args ...string) Result { return p.Run(append([]string{"--runtime", "nvbind"}, args...)...) }
	bad := run("-e", "NVIDIA_VISIBLE_DEVICES=all", "localhost/nvbind-busybox:test", "ls", "/dev")
	if bad.Code == 0 || !strings.Contains(bad.Stderr, `policy rule "server" refuses devices nvidia.com/gpu=all`) {
		t.Errorf("podman run with NVIDIA_VISIBLE_DEVICES=all under server: %s", bad)
	}
	wantGPUs(t, "podman with a CDI annotation and the image's env", run("--annotation", "cdi.k8s.io/dp=nvidia.com/gpu=2",
		"-e", "NVIDIA_VISIBLE_DEVICES=all", "localhost/nvbind-busybox:test", "ls", "/dev"), "nvidia2")
	recs := readAudit(t, log)
	if len(recs) != 2 {
		t.Fatalf("audit has %d records, want 2", len(recs))
	}
	for _, r := range recs {
		if tenant, _ := r["tenant"].(map[string]any); tenant["engine"] != "podman" {
			t.Errorf("audit tenant %v, want engine podman", tenant)
		}
	}
	if recs[1]["decision"] != "narrowed" {
		t.Errorf("second decision %v, want narrowed (env ignored)", recs[1]["decision"])
	}
	if r := runCmd(t, nil, bins.CLI, "audit", "verify", log); r.Code != 0 {
		t.Errorf("audit verify: %s", r)
	}
}
