package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/specconv"

	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

// whole_bench_test.go measures a whole GPU container create on real runc:
// `create` of one busybox bundle without a GPU (plain runc), through
// nvbind-runtime, and through NVIDIA's nvidia-container-runtime in CDI
// mode with nvidia-ctk's own spec, on a 4-GPU simulated driver root. Each
// round runs the three side by side on fresh bundles (hooks see a fresh
// rootfs every time); the container is deleted untimed.

// wholeFixture is what the three variants share.
type wholeFixture struct {
	dir, runRoot, rootfs string
	nvbindEnv, nvidiaEnv []string
	// noHooksEnv runs nvbind with its spec's hooks taken out: what the
	// hook costs is the difference.
	noHooksEnv         []string
	gpuSpec, plainSpec []byte
	// baseEnv runs a baseline build's runtime with its own spec and hook
	// (NVBIND_BENCH_BASELINE); nil without one.
	baseEnv []string
}

func newWholeFixture(b *testing.B, toolkit string) *wholeFixture {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root (runc, mknod)")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		b.Skip("needs busybox")
	}
	dir := tmpfsDir(b)
	root := filepath.Join(dir, "driver")
	if _, err := simroot.Build(root, simroot.Options{GPUs: 4, LDCache: true}); err != nil {
		b.Fatal(err)
	}
	f := &wholeFixture{dir: dir, runRoot: filepath.Join(dir, "runc"), rootfs: filepath.Join(dir, "rootfs")}
	nvbindSpecs, nvidiaSpecs := filepath.Join(dir, "cdi-nvbind"), filepath.Join(dir, "cdi-nvidia")
	os.MkdirAll(nvidiaSpecs, 0o755)
	hook := filepath.Join(binDir, "nvbind-hook")
	if out, err := exec.Command(filepath.Join(binDir, "nvbind"), "cdi", "generate", "--driver-root", root, "--no-nvml",
		"--format", "json", "--output", filepath.Join(nvbindSpecs, "nvidia.json"), "--hook-path", hook).CombinedOutput(); err != nil {
		b.Fatalf("nvbind cdi generate: %v: %s", err, out)
	}
	nvidiaSpec(b, toolkit, root, 4, filepath.Join(nvidiaSpecs, "nvidia.json"))
	noHooks := filepath.Join(dir, "cdi-nvbind-no-hooks")
	os.MkdirAll(noHooks, 0o755)
	data, err := os.ReadFile(filepath.Join(nvbindSpecs, "nvidia.json"))
	if err != nil {
		b.Fatal(err)
	}
	var specDoc map[string]any
	json.Unmarshal(data, &specDoc)
	stripHooks(specDoc)
	data, _ = json.Marshal(specDoc)
	os.WriteFile(filepath.Join(noHooks, "nvidia.json"), data, 0o644)
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[runtime]\nruntimes = [\"runc\"]\nstate-dir = %q\n[cdi]\nspec-dirs = [%q]\njit-spec = %q\n[driver]\nroot = %q\n[hook]\npath = %q\n[ledger]\ndir = %q\n",
		filepath.Join(dir, "state"), nvbindSpecs, filepath.Join(nvbindSpecs, "nvidia.json"), root, hook, filepath.Join(dir, "ledger"))), 0o644)
	path := "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	f.nvbindEnv = []string{path, "NVBIND_CONFIG=" + cfg}
	f.nvidiaEnv = []string{path, "XDG_CONFIG_HOME=" + nvidiaConfig(b, dir, "runc", nvidiaSpecs)}
	cfgNoHooks := filepath.Join(dir, "config-no-hooks.toml")
	os.WriteFile(cfgNoHooks, []byte(fmt.Sprintf("[runtime]\nruntimes = [\"runc\"]\nstate-dir = %q\n[cdi]\nspec-dirs = [%q]\njit-spec = \"\"\n[driver]\nroot = %q\n[ledger]\ndir = %q\n",
		filepath.Join(dir, "state"), noHooks, root, filepath.Join(dir, "ledger"))), 0o644)
	f.noHooksEnv = []string{path, "NVBIND_CONFIG=" + cfgNoHooks}
	if base := baselineDir(b); base != "" {
		baseSpecs := filepath.Join(dir, "cdi-baseline")
		if out, err := exec.Command(filepath.Join(base, "nvbind"), "cdi", "generate", "--driver-root", root, "--no-nvml",
			"--format", "json", "--output", filepath.Join(baseSpecs, "nvidia.json"), "--hook-path", filepath.Join(base, "nvbind-hook")).CombinedOutput(); err != nil {
			b.Fatalf("baseline nvbind cdi generate: %v: %s", err, out)
		}
		cfgBase := filepath.Join(dir, "config-baseline.toml")
		os.WriteFile(cfgBase, []byte(fmt.Sprintf("[runtime]\nruntimes = [\"runc\"]\nstate-dir = %q\n[cdi]\nspec-dirs = [%q]\njit-spec = %q\n[driver]\nroot = %q\n[hook]\npath = %q\n[ledger]\ndir = %q\n",
			filepath.Join(dir, "state"), baseSpecs, filepath.Join(baseSpecs, "nvidia.json"), root, filepath.Join(base, "nvbind-hook"), filepath.Join(dir, "ledger"))), 0o644)
		f.baseEnv = []string{path, "NVBIND_CONFIG=" + cfgBase}
	}

	// A minimal busybox rootfs, copied afresh for every create.
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "lib", "usr/lib", "usr/bin"} {
		os.MkdirAll(filepath.Join(f.rootfs, d), 0o755)
	}
	data, _ = os.ReadFile(busybox)
	os.WriteFile(filepath.Join(f.rootfs, "bin/busybox"), data, 0o755)
	for _, a := range []string{"sh", "true", "ls"} {
		os.Symlink("busybox", filepath.Join(f.rootfs, "bin", a))
	}
	spec := specconv.Example()
	spec.Root.Readonly = false
	spec.Process.Terminal = false
	spec.Process.Args = []string{"true"}
	f.plainSpec, _ = json.Marshal(spec)
	spec.Process.Env = append(spec.Process.Env, "NVIDIA_VISIBLE_DEVICES=all")
	f.gpuSpec, _ = json.Marshal(spec)
	return f
}

// create times one `create` of a fresh bundle by prog, then deletes the
// container. It fails the benchmark when the create fails or, for a GPU
// variant, when the spec runc got has no GPU.
func (f *wholeFixture) create(b *testing.B, name string, prog string, env []string, spec []byte, wantGPU bool) time.Duration {
	bundle := filepath.Join(f.dir, "bundle-"+name)
	os.RemoveAll(bundle)
	os.MkdirAll(bundle, 0o755)
	if out, err := exec.Command("cp", "-a", f.rootfs, filepath.Join(bundle, "rootfs")).CombinedOutput(); err != nil {
		b.Fatalf("copy rootfs: %v: %s", err, out)
	}
	os.WriteFile(filepath.Join(bundle, "config.json"), spec, 0o644)
	id := "bench-" + name
	cmd := exec.Command(prog, "--root", f.runRoot, "create", "--bundle", bundle, id)
	cmd.Env = env
	// Output through a file, not a pipe: the created container's init
	// keeps what it inherited open until it is deleted.
	log, err := os.Create(filepath.Join(f.dir, "create.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	start := time.Now()
	err = cmd.Run()
	d := time.Since(start)
	if err != nil {
		out, _ := os.ReadFile(log.Name())
		b.Fatalf("%s create: %v: %s", name, err, out)
	}
	if del, err := exec.Command("runc", "--root", f.runRoot, "delete", "--force", id).CombinedOutput(); err != nil {
		b.Fatalf("runc delete: %v: %s", err, del)
	}
	if wantGPU {
		if data, _ := os.ReadFile(filepath.Join(bundle, "config.json")); !strings.Contains(string(data), "/dev/nvidia3") {
			b.Fatalf("%s: the spec runc got has no GPU", name)
		}
	}
	if name == "nvbind" || name == "baseline" {
		// The hook's work is done, by the hook or by nvbind-runtime before runc.
		if data, _ := os.ReadFile(filepath.Join(bundle, "rootfs/etc/ld.so.cache")); !strings.Contains(string(data), "libcuda.so.1") {
			b.Fatalf("%s: the container's ld cache lacks libcuda.so.1", name)
		}
	}
	os.RemoveAll(bundle)
	return d
}

// BenchmarkWholeCreate reports the p50 of a whole `create` on runc without
// a GPU, through nvbind and through NVIDIA's runtime (all 4 GPUs), what
// each adds over the plain create, and nvbind's added time as a fraction of
// NVIDIA's (target: at most 0.10x). NVBIND_BENCH_SAMPLES sets the rounds
// (default 30).
func BenchmarkWholeCreate(b *testing.B) {
	build(b)
	toolkit := buildNVIDIA(b)
	if _, err := exec.LookPath("runc"); err != nil {
		b.Skip("needs runc")
	}
	f := newWholeFixture(b, toolkit)
	runtime := filepath.Join(binDir, "nvbind-runtime")
	nvidia := filepath.Join(toolkit, "nvidia-container-runtime")
	n := samples(30)
	for i := 0; i < b.N; i++ {
		var plain, nvbind, noHooks, nv, baseline []time.Duration
		for r := 0; r < n; r++ {
			plain = append(plain, f.create(b, "plain", "runc", f.nvbindEnv[:1], f.plainSpec, false))
			// nvbind and the baseline run back to back, in turns first.
			runs := []func(){func() {
				nvbind = append(nvbind, f.create(b, "nvbind", runtime, f.nvbindEnv, f.gpuSpec, true))
			}}
			if f.baseEnv != nil {
				runs = append(runs, func() {
					baseline = append(baseline, f.create(b, "baseline", filepath.Join(baselineDir(b), "nvbind-runtime"), f.baseEnv, f.gpuSpec, true))
				})
				if r%2 == 1 {
					runs[0], runs[1] = runs[1], runs[0]
				}
			}
			for _, run := range runs {
				run()
			}
			noHooks = append(noHooks, f.create(b, "nvbind-no-hooks", runtime, f.noHooksEnv, f.gpuSpec, true))
			nv = append(nv, f.create(b, "nvidia", nvidia, f.nvidiaEnv, f.gpuSpec, true))
		}
		p, nb, nvd := pct(plain, 0.5), pct(nvbind, 0.5), pct(nv, 0.5)
		if baseline != nil {
			bl := pct(baseline, 0.5)
			b.ReportMetric(float64((bl-p).Microseconds())/1000, "baseline-added-ms")
			if nvd > p {
				b.ReportMetric(float64(bl-p)/float64(nvd-p), "baseline-x-nvidia-added")
			}
		}
		b.ReportMetric(float64((pct(noHooks, 0.5)-p).Microseconds())/1000, "nvbind-without-hooks-added-ms")
		b.ReportMetric(ms(p), "plain-p50-ms")
		b.ReportMetric(ms(nb), "nvbind-p50-ms")
		b.ReportMetric(ms(nvd), "nvidia-p50-ms")
		b.ReportMetric(ms(nb-p), "nvbind-added-ms")
		b.ReportMetric(ms(nvd-p), "nvidia-added-ms")
		if nvd > p {
			b.ReportMetric(float64(nb-p)/float64(nvd-p), "x-nvidia-added")
		}
	}
}

// stripHooks removes every "hooks" member of a CDI spec document.
func stripHooks(v any) {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "hooks")
		for _, e := range x {
			stripHooks(e)
		}
	case []any:
		for _, e := range x {
			stripHooks(e)
		}
	}
}
