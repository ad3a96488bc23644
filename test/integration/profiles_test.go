package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nvbind/nvbind/internal/gpu"
)

// capabilityLibs are the fake driver libraries the capability-* devices of
// writeCapabilitySpec bring, by capability.
var capabilityLibs = map[string]string{
	"graphics": "libGLX_nvidia.so.0",
	"display":  "libnvidia-egl-wayland.so.1",
	"video":    "libnvcuvid.so.1",
	"ngx":      "libnvidia-ngx.so.1",
}

const libDir = "/usr/lib/x86_64-linux-gnu"

// writeCapabilitySpec adds capability-<cap> devices to the sim root's CDI
// dir (kind nvidia.com/gpu, beside the harness's spec): each mounts one
// fake library, so a container shows which capabilities it got.
func writeCapabilitySpec(t *testing.T, s *SimRoot) {
	t.Helper()
	type mount struct {
		HostPath      string   `json:"hostPath"`
		ContainerPath string   `json:"containerPath"`
		Options       []string `json:"options"`
	}
	type device struct {
		Name           string `json:"name"`
		ContainerEdits struct {
			Mounts []mount `json:"mounts"`
		} `json:"containerEdits"`
	}
	var devices []device
	for cap, lib := range capabilityLibs {
		host := filepath.Join(s.Dir, "usr/lib", lib)
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(host, []byte("fake "+lib), 0o644); err != nil {
			t.Fatal(err)
		}
		d := device{Name: "capability-" + cap}
		d.ContainerEdits.Mounts = []mount{{host, libDir + "/" + lib, []string{"ro", "nosuid", "nodev", "bind"}}}
		devices = append(devices, d)
	}
	data, _ := json.MarshalIndent(map[string]any{"cdiVersion": "0.5.0", "kind": "nvidia.com/gpu", "devices": devices}, "", "  ")
	if err := os.WriteFile(filepath.Join(s.SpecDir, "nvidia-capabilities.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// probe prints what the tests check: env, /dev/shm size in KiB, the driver
// libraries, rlimits and mounts.
const probe = `env; df -k /dev/shm | awk 'NR==2 {print "SHMKB=" $2}'; echo LIBS=$(ls ` + libDir + ` 2>/dev/null);` +
	` grep -E 'Max (locked memory|stack size)' /proc/self/limits; awk '{print "MOUNT=" $5}' /proc/self/mountinfo`

type probeOut struct {
	env    map[string]string
	shmKiB string
	libs   string
	raw    string
}

func parseProbe(out string) probeOut {
	p := probeOut{env: map[string]string{}, raw: out}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "SHMKB="):
			p.shmKiB = strings.TrimPrefix(line, "SHMKB=")
		case strings.HasPrefix(line, "LIBS="):
			p.libs = strings.TrimPrefix(line, "LIBS=")
		default:
			if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "MOUNT") {
				p.env[k] = v
			}
		}
	}
	return p
}

func (p probeOut) mounted(target string) bool {
	return strings.Contains(p.raw, "\nMOUNT="+target+"\n")
}

// runProfile runs the probe with a profile and parameters on all GPUs.
func runProfile(t *testing.T, s *SimRoot, profile string, params map[string]string, env ...string) (probeOut, *Bundle) {
	t.Helper()
	b := newBundle(t, "sh", "-c", probe)
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=all")
	b.SetEnv(env...)
	b.Spec.Annotations = map[string]string{"nvbind.io/profile": profile}
	for k, v := range params {
		b.Spec.Annotations["nvbind.io/profile."+k] = v
	}
	b.Save(t)
	res := runContainer(t, s, b)
	if res.Code != 0 {
		t.Fatalf("container failed: %s", res)
	}
	if res.Stderr != "" {
		t.Errorf("nvbind-runtime wrote to the container's stderr: %q", res.Stderr)
	}
	return parseProbe(res.Stdout), b
}

func checkEnv(t *testing.T, p probeOut, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got, ok := p.env[k]; !ok || got != v {
			t.Errorf("container env %s=%q, want %q", k, got, v)
		}
	}
}

func TestProfileGaming(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 2)
	writeCapabilitySpec(t, s)
	cache := t.TempDir()
	run := t.TempDir()
	os.MkdirAll(filepath.Join(run, "pulse"), 0o755)
	os.WriteFile(filepath.Join(run, "pulse/native"), nil, 0o666)
	// The X11 socket directory is a fixed host path; make it if this host
	// has none (and remove it again).
	x11 := "/tmp/.X11-unix"
	if _, err := os.Stat(x11); os.IsNotExist(err) {
		if err := os.Mkdir(x11, 0o1777); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(x11) })
	}
	p, _ := runProfile(t, s, "gaming", map[string]string{
		"cache-dir": cache, "display": "x11", "x11-display": ":1", "audio": "pulse", "runtime-dir": run, "input": "true",
	})
	checkEnv(t, p, map[string]string{
		"PROTON_ENABLE_NVAPI": "1", "DXVK_ENABLE_NVAPI": "1",
		"__GL_SHADER_DISK_CACHE": "1", "__GL_SHADER_DISK_CACHE_SIZE": "10737418240",
		"__GL_SHADER_DISK_CACHE_PATH": "/var/cache/nvbind", "DXVK_STATE_CACHE_PATH": "/var/cache/nvbind",
		"DXVK_SHADER_CACHE_PATH": "/var/cache/nvbind", "VKD3D_SHADER_CACHE_PATH": "/var/cache/nvbind",
		"DISPLAY": ":1", "PULSE_SERVER": "unix:" + run + "/pulse/native",
	})
	for _, absent := range []string{"__NV_PRIME_RENDER_OFFLOAD", "WAYLAND_DISPLAY"} {
		if _, ok := p.env[absent]; ok {
			t.Errorf("%s set without being asked for", absent)
		}
	}
	if p.shmKiB != "1048576" {
		t.Errorf("/dev/shm is %s KiB, want 1048576 (1GiB)", p.shmKiB)
	}
	for _, m := range []string{"/var/cache/nvbind", "/tmp/.X11-unix", run + "/pulse/native"} {
		if !p.mounted(m) {
			t.Errorf("%s not mounted", m)
		}
	}
	for _, lib := range capabilityLibs {
		if !strings.Contains(p.libs, lib) {
			t.Errorf("gaming container lacks %s (capabilities not injected): %s", lib, p.libs)
		}
	}
}

func TestProfileGamingSkipsMissingHostPaths(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	missing := filepath.Join(t.TempDir(), "nothing-here")
	p, _ := runProfile(t, s, "gaming", map[string]string{
		"cache-dir": missing, "display": "wayland", "audio": "pipewire", "runtime-dir": missing, "input": "true",
	})
	for _, absent := range []string{"WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "PULSE_SERVER", "__GL_SHADER_DISK_CACHE_PATH"} {
		if v, ok := p.env[absent]; ok {
			t.Errorf("%s=%s set although its mount was skipped", absent, v)
		}
	}
	if p.env["PROTON_ENABLE_NVAPI"] != "1" {
		t.Errorf("profile not applied: %v", p.env)
	}
	if p.mounted("/var/cache/nvbind") {
		t.Error("missing cache dir mounted")
	}
}

func TestProfileML(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 2)
	writeCapabilitySpec(t, s)
	cache := t.TempDir()
	p, b := runProfile(t, s, "ml", map[string]string{"cache-dir": cache})
	checkEnv(t, p, map[string]string{
		"CUDA_CACHE_PATH": "/var/cache/nvbind", "CUDA_CACHE_MAXSIZE": "4294967296", "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
		"CUDA_MODULE_LOADING": "LAZY", "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True", "TF_FORCE_GPU_ALLOW_GROWTH": "true",
	})
	if p.shmKiB != "8388608" {
		t.Errorf("/dev/shm is %s KiB, want 8388608 (8GiB)", p.shmKiB)
	}
	if p.libs != "" {
		t.Errorf("ml container has driver libraries beyond compute/utility: %s", p.libs)
	}
	memlock, stack := expectedLimits(t, s)
	if !strings.Contains(p.raw, "Max locked memory         "+memlock) {
		t.Errorf("memlock not %s:\n%s", memlock, p.raw)
	}
	if !strings.Contains(p.raw, "Max stack size            "+stack) {
		t.Errorf("stack not %s:\n%s", stack, p.raw)
	}
	if !p.mounted("/var/cache/nvbind") {
		t.Error("CUDA cache dir not mounted")
	}
	spec := decodeSpec(t, b.ReadConfig(t))
	for _, m := range spec.Mounts {
		if m.Destination == "/var/cache/nvbind" && m.Source != cache {
			t.Errorf("cache mount from %s, want %s", m.Source, cache)
		}
	}
}

// expectedLimits returns the memlock and stack lines ml's rlimits give on
// this host: unlimited and 64 MiB where the runtime may raise its hard
// limits; else nvbind caps them at the host's hard limits and logs why.
func expectedLimits(t *testing.T, s *SimRoot) (memlock, stack string) {
	t.Helper()
	prlimit := requireTool(t, "prlimit")
	if runCmd(t, nil, prlimit, "--memlock=unlimited:unlimited", "true").Code == 0 {
		return "unlimited            unlimited", "67108864             67108864"
	}
	var ml, st unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_MEMLOCK, &ml)
	unix.Getrlimit(unix.RLIMIT_STACK, &st)
	log, _ := os.ReadFile(filepath.Join(filepath.Dir(s.Config), "nvbind.log"))
	if !strings.Contains(string(log), "RLIMIT_MEMLOCK capped at") {
		t.Errorf("memlock capped without a warning in nvbind's log:\n%s", log)
	}
	limit := func(v uint64) string {
		if v == unix.RLIM_INFINITY {
			return "unlimited"
		}
		return fmt.Sprint(v)
	}
	pad := func(v string) string { return fmt.Sprintf("%-21s%s", v, v) }
	stackWant := uint64(67108864)
	if st.Max < stackWant {
		stackWant = st.Max
	}
	return pad(limit(ml.Max)), pad(limit(stackWant))
}

func TestProfileOllama(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 2)
	tests := []struct {
		profile string
		params  map[string]string
		want    map[string]string
	}{
		{"ollama", map[string]string{"model": "llama3.1:8b", "gpu-memory": "24GiB"}, map[string]string{
			"OLLAMA_CONTEXT_LENGTH": "8192", "OLLAMA_NUM_PARALLEL": "4", "OLLAMA_MAX_LOADED_MODELS": "1",
			"OLLAMA_FLASH_ATTENTION": "1", "OLLAMA_KV_CACHE_TYPE": "f16", "OLLAMA_KEEP_ALIVE": "-1",
		}},
		// 70B q4 needs ~46 GiB: more than one 24 GiB GPU, less than both.
		{"llm-inference", map[string]string{"model": "llama3.1:70b", "gpu-memory": "24GiB", "keep-alive": "30m"}, map[string]string{
			"OLLAMA_NUM_PARALLEL": "1", "OLLAMA_KV_CACHE_TYPE": "f16", "OLLAMA_SCHED_SPREAD": "1", "OLLAMA_KEEP_ALIVE": "30m",
		}},
		// Does not fit, but allowed: starts with the smallest configuration.
		{"ollama", map[string]string{"model": "llama3.1:70b-instruct-fp16", "gpu-memory": "24GiB", "allow-overcommit": "true"}, map[string]string{
			"OLLAMA_NUM_PARALLEL": "1", "OLLAMA_KV_CACHE_TYPE": "q4_0", "OLLAMA_SCHED_SPREAD": "1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.profile+" "+tt.params["model"], func(t *testing.T) {
			p, _ := runProfile(t, s, tt.profile, tt.params)
			checkEnv(t, p, tt.want)
			if _, ok := tt.want["OLLAMA_SCHED_SPREAD"]; !ok {
				if v, set := p.env["OLLAMA_SCHED_SPREAD"]; set {
					t.Errorf("OLLAMA_SCHED_SPREAD=%s set for a model that fits one GPU", v)
				}
			}
		})
	}
}

func TestProfileUserConfig(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	dir := t.TempDir()
	dev := filepath.Join(dir, "fake-event0")
	// An input event node: char 13:64.
	if err := unix.Mknod(dev, unix.S_IFCHR|0o660, int(unix.Mkdev(13, 64))); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o755)
	os.WriteFile(filepath.Join(data, "hello.txt"), []byte("from the host"), 0o644)
	s.WriteConfig(t, fmt.Sprintf(`
[profiles.mine]
extends = "ml"
description = "test profile"
shm-size = "256MiB"
env = { MY_SETTING = "hello", CUDA_DEVICE_ORDER = "FASTEST_FIRST" }
devices = [%q]
rlimits = { nofile = "4096:8192" }
[[profiles.mine.mounts]]
source = %q
target = "/data"
options = ["rbind", "ro", "nosuid", "nodev"]
`, filepath.Join(dir, "fake-event*"), data))
	b := newBundle(t, "sh", "-c", probe+"; cat /data/hello.txt; echo; echo DEV=$(stat -c %t:%T "+dev+")")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0", "NVBIND_PROFILE=mine")
	b.Save(t)
	res := runContainer(t, s, b)
	if res.Code != 0 {
		t.Fatalf("container failed: %s", res)
	}
	p := parseProbe(res.Stdout)
	checkEnv(t, p, map[string]string{"MY_SETTING": "hello", "CUDA_DEVICE_ORDER": "FASTEST_FIRST", "CUDA_MODULE_LOADING": "LAZY"})
	if p.shmKiB != "262144" {
		t.Errorf("/dev/shm is %s KiB, want 262144 (256MiB)", p.shmKiB)
	}
	if !strings.Contains(res.Stdout, "from the host") {
		t.Errorf("user mount not visible:\n%s", res.Stdout)
	}
	if !strings.Contains(res.Stdout, "DEV=d:40") {
		t.Errorf("device node 13:64 not in the container:\n%s", res.Stdout)
	}
	if memlock, _ := expectedLimits(t, s); !strings.Contains(p.raw, "Max locked memory         "+memlock) {
		t.Errorf("ml's memlock not inherited (want %s):\n%s", memlock, p.raw)
	}
	spec := decodeSpec(t, b.ReadConfig(t))
	allowed := false
	for _, d := range spec.Linux.Resources.Devices {
		if d.Allow && d.Type == "c" && d.Major != nil && *d.Major == 13 && d.Minor != nil && *d.Minor == 64 {
			allowed = true
		}
	}
	if !allowed {
		t.Errorf("no cgroup allow rule for the profile's device 13:64")
	}
	// `nvbind profile show` reads the same config.
	out := runCmd(t, s.Env(), bins.CLI, "profile", "show", "mine")
	if out.Code != 0 || !strings.Contains(out.Stdout, "MY_SETTING=hello") || !strings.Contains(out.Stdout, "profile mine (config "+s.Config+")") {
		t.Errorf("profile show mine: %s", out)
	}
}

func TestProfileErrorsLeaveBundleUnchanged(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	tests := []struct {
		name   string
		annots map[string]string
		env    []string
		want   []string
	}{
		{"unknown profile", map[string]string{"nvbind.io/profile": "gamer"}, nil,
			[]string{`unknown profile "gamer"`, "gaming, llm-inference, ml, ollama"}},
		{"unknown profile by env", nil, []string{"NVBIND_PROFILE=mll"}, []string{`unknown profile "mll"`}},
		{"unknown parameter", map[string]string{"nvbind.io/profile": "ml", "nvbind.io/profile.shm": "1g"}, nil,
			[]string{`unknown parameter "shm"`, "cache-dir, shm-size"}},
		{"bad value", map[string]string{"nvbind.io/profile": "gaming", "nvbind.io/profile.display": "vga"}, nil,
			[]string{`parameter display: "vga" is not one of none, x11, wayland, both`}},
		{"model too big", map[string]string{"nvbind.io/profile": "ollama", "nvbind.io/profile.model": "llama3.1:70b", "nvbind.io/profile.gpu-memory": "24GiB"}, nil,
			[]string{"needs about 43.1 GiB", "have 24.0 GiB", "allow-overcommit=true"}},
	}
	var reqs []badRequest
	for _, tt := range tests {
		reqs = append(reqs, badRequest{name: tt.name, env: append([]string{"NVIDIA_VISIBLE_DEVICES=0"}, tt.env...),
			annotations: tt.annots, want: tt.want})
	}
	assertRequestsRefused(t, s, reqs)
}

func TestProfileCLI(t *testing.T) {
	s := newSimRoot(t, 1)
	list := runCmd(t, s.Env(), bins.CLI, "profile", "list")
	if list.Code != 0 {
		t.Fatalf("profile list: %s", list)
	}
	for _, name := range []string{"gaming", "ml", "ollama", "llm-inference"} {
		if !strings.Contains(list.Stdout, name+" ") {
			t.Errorf("profile list lacks %s:\n%s", name, list.Stdout)
		}
	}
	show := runCmd(t, s.Env(), bins.CLI, "profile", "show", "ollama", "--json", "--param", "model=qwen2.5:32b", "--param", "gpu-memory=24GiB")
	if show.Code != 0 {
		t.Fatalf("profile show: %s", show)
	}
	var r struct {
		Settings []struct{ Kind, Name, Value, Source string }
		Fit      struct {
			Parallel    int
			KVCacheType string
			Fits        bool
		} `json:"ollamaFit"`
	}
	if err := json.Unmarshal([]byte(show.Stdout), &r); err != nil {
		t.Fatalf("profile show --json: %v\n%s", err, show.Stdout)
	}
	if !r.Fit.Fits || r.Fit.Parallel != 1 || r.Fit.KVCacheType != "f16" {
		t.Errorf("qwen2.5:32b on 24 GiB: %+v", r.Fit)
	}
	for _, st := range r.Settings {
		if st.Source == "" {
			t.Errorf("setting %s %s without source", st.Kind, st.Name)
		}
	}
	bad := runCmd(t, s.Env(), bins.CLI, "profile", "show", "ollama", "--param", "precision=fp8", "--param", "size=8b")
	if bad.Code == 0 || !strings.Contains(bad.Stderr, `parameter precision: "fp8" is not one of fp16, q8, q4, auto`) || bad.Stdout != "" {
		t.Errorf("bad parameter: %s", bad)
	}
}

// Without a gpu-memory parameter the ollama profile takes GPU memory from
// the inventory `nvbind cdi generate` saved (the runtime never loads NVML).
func TestProfileOllamaUsesInventory(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	s.Inventory = filepath.Join(t.TempDir(), "inventory.json")
	s.WriteConfig(t, "")
	inv := &gpu.Inventory{Source: gpu.SourceNVML, DriverVersion: "580.95.05",
		GPUs: []gpu.GPU{{Index: 0, UUID: s.UUIDs[0], MemoryBytes: 24 << 30}}}
	if err := gpu.SaveInventory(s.Inventory, inv); err != nil {
		t.Fatal(err)
	}
	b := newBundle(t, "true")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0")
	b.Spec.Annotations = map[string]string{"nvbind.io/profile": "ollama", "nvbind.io/profile.model": "llama3.1:70b"}
	b.Save(t)
	before := b.ReadConfig(t)
	// A 70B model on one 24 GiB GPU is refused, naming the inventory's 24.0 GiB.
	assertRefused(t, s, b, before, runContainer(t, s, b), "24.0 GiB", "GPU inventory")
	p, _ := runProfile(t, s, "ollama", map[string]string{"model": "llama3.1:8b"})
	checkEnv(t, p, map[string]string{"OLLAMA_NUM_PARALLEL": "4", "OLLAMA_KV_CACHE_TYPE": "f16"})
}
