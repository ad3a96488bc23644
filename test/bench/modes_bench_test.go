package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/specconv"
	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

// BenchmarkPrecreateNoRequest: what Podman pays for nvbind's precreate
// hook on a container that asks for no GPU (hooks.d runs it for every
// container): one nvbind-hook process reading the spec and writing it back,
// beside /bin/cat doing the same. Target: at most 2 ms.
func BenchmarkPrecreateNoRequest(b *testing.B) {
	build(b)
	f := newFixture(b, "json")
	hook := filepath.Join(binDir, "nvbind-hook")
	variants := []struct {
		name string
		prog string
		args []string
		env  []string
	}{
		{"cat", "/bin/cat", nil, []string{}},
		{"go-cat", filepath.Join(binDir, "catonly"), nil, []string{}},
		{"nvbind-hook-precreate", hook, []string{"precreate", "--config", f.config}, []string{}},
		// With an environment (a hooks.d file's env) the hook first
		// re-executes itself with an empty one.
		{"nvbind-hook-precreate-env", hook, []string{"precreate"}, []string{"NVBIND_CONFIG=" + f.config}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			// Each round runs both baselines too: this VM's speed drifts
			// more between runs than the differences measured.
			var times, cats, gocats []time.Duration
			for i := 0; i < b.N; i++ {
				times = append(times, filter(b, f.spec, v.env, v.prog, v.args...))
				cats = append(cats, filter(b, f.spec, []string{}, "/bin/cat"))
				gocats = append(gocats, filter(b, f.spec, []string{}, filepath.Join(binDir, "catonly")))
			}
			p50 := pct(times, 0.5)
			b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(pct(times, 0.95).Microseconds())/1000, "p95-ms")
			b.ReportMetric(float64((p50-pct(cats, 0.5)).Microseconds())/1000, "over-cat-p50-ms")
			b.ReportMetric(float64((p50-pct(gocats, 0.5)).Microseconds())/1000, "over-go-cat-p50-ms")
		})
	}
}

// filter runs prog with spec on stdin, checks it comes back unchanged and
// returns the wall time.
func filter(b *testing.B, spec []byte, env []string, prog string, args ...string) time.Duration {
	cmd := exec.Command(prog, args...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(spec)
	var out bytes.Buffer
	cmd.Stdout = &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil || !bytes.Equal(out.Bytes(), spec) {
		b.Fatalf("%s: %v (output changed: %v)", prog, err, !bytes.Equal(out.Bytes(), spec))
	}
	return d
}

// BenchmarkModesCreate: a whole GPU `runc create` (then deleted, untimed)
// of a busybox container asking for one GPU of an 8-GPU simulated driver,
// through each door: runc alone without a request (the baseline), runc
// given the GPU spec already edited (the GPU's own cost), the shim
// (nvbind-runtime -> runc), the precreate hook (nvbind-hook precreate, then
// runc) and the prestart hook (runc calling nvbind-hook prestart). Reports
// p50, the time added over the baseline and, for the doors, over the
// pre-edited spec: what the door itself costs.
func BenchmarkModesCreate(b *testing.B) {
	build(b)
	runc, err := exec.LookPath("runc")
	busybox, err2 := exec.LookPath("busybox")
	if err != nil || err2 != nil {
		b.Skip("needs runc and busybox")
	}
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	dir := tmpfsDir(b)
	driver := filepath.Join(dir, "driver")
	if _, err := simroot.Build(driver, simroot.Options{GPUs: 8, LDCache: true}); err != nil {
		b.Fatal(err)
	}
	hook := filepath.Join(binDir, "nvbind-hook")
	cdiDir := filepath.Join(dir, "cdi")
	if out, err := exec.Command(filepath.Join(binDir, "nvbind"), "cdi", "generate", "--driver-root", driver,
		"--output", filepath.Join(cdiDir, "nvidia.json"), "--hook-path", hook, "--no-nvml").CombinedOutput(); err != nil {
		b.Fatalf("cdi generate: %v: %s", err, out)
	}
	config := filepath.Join(dir, "config.toml")
	os.WriteFile(config, []byte(fmt.Sprintf("[runtime]\nruntimes = [%q]\n[cdi]\nspec-dirs = [%q]\njit-spec = \"\"\n[driver]\nroot = %q\n[hook]\npath = %q\n",
		runc, cdiDir, driver, hook)), 0o644)
	runRoot := filepath.Join(dir, "runc")

	bundle := func(name string, request bool, prestart bool) (string, []byte) {
		bd := filepath.Join(dir, name)
		for _, d := range []string{"rootfs/bin", "rootfs/dev", "rootfs/proc", "rootfs/sys", "rootfs/etc", "rootfs/tmp"} {
			os.MkdirAll(filepath.Join(bd, d), 0o755)
		}
		data, _ := os.ReadFile(busybox)
		os.WriteFile(filepath.Join(bd, "rootfs/bin/sh"), data, 0o755)
		spec := specconv.Example()
		spec.Root.Readonly = false
		spec.Process.Terminal = false
		spec.Process.Args = []string{"sh", "-c", "true"}
		if request {
			spec.Process.Env = append(spec.Process.Env, "NVIDIA_VISIBLE_DEVICES=3")
		}
		if prestart {
			spec.Hooks = &rspec.Hooks{Prestart: []rspec.Hook{{Path: hook, Args: []string{"nvbind-hook", "prestart", "--config", config}}}}
		}
		raw, _ := json.MarshalIndent(spec, "", "\t")
		return bd, raw
	}
	type mode struct {
		name   string
		bundle string
		spec   []byte
		create func(bd, id string) error
	}
	plainCreate := func(bd, id string) error {
		log := filepath.Join(bd, "runc.log")
		os.Remove(log)
		if err := exec.Command(runc, "--root", runRoot, "--log", log, "create", "--bundle", bd, id).Run(); err != nil {
			msg, _ := os.ReadFile(log)
			return fmt.Errorf("%v: %s", err, msg)
		}
		return nil
	}
	var modes []mode
	add := func(name string, request, prestart bool, create func(bd, id string) error) {
		bd, spec := bundle(name, request, prestart)
		modes = append(modes, mode{name, bd, spec, create})
	}
	add("runc-no-gpu", false, false, plainCreate)
	// The GPU spec as the doors make it, given to runc directly: what the
	// GPU itself costs (device nodes, mounts, the CDI hooks), without any
	// door.
	add("runc-gpu-spec-pre-edited", true, false, plainCreate)
	{
		m := &modes[len(modes)-1]
		cmd := exec.Command(hook, "precreate", "--config", config)
		cmd.Stdin = bytes.NewReader(m.spec)
		edited, err := cmd.Output()
		if err != nil {
			b.Fatalf("precreate: %v", err)
		}
		m.spec = edited
	}
	add("shim", true, false, func(bd, id string) error {
		cmd := exec.Command(filepath.Join(binDir, "nvbind-runtime"), "--root", runRoot, "create", "--bundle", bd, id)
		cmd.Env = []string{"NVBIND_CONFIG=" + config, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		// No pipes: the created container keeps runc's stdio open.
		return cmd.Run()
	})
	add("precreate", true, false, func(bd, id string) error {
		p := filepath.Join(bd, "config.json")
		in, _ := os.ReadFile(p)
		cmd := exec.Command(hook, "precreate", "--config", config)
		cmd.Env = []string{}
		cmd.Stdin = bytes.NewReader(in)
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			return err
		}
		if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
			return err
		}
		return plainCreate(bd, id)
	})
	add("prestart", true, true, plainCreate)

	// One round creates a container in every mode, so that modes compare
	// samples taken together: this VM's speed drifts more between runs
	// than the differences measured.
	times := make([][]time.Duration, len(modes))
	for n := 0; n < b.N; n++ {
		for i, m := range modes {
			os.WriteFile(filepath.Join(m.bundle, "config.json"), m.spec, 0o644)
			id := fmt.Sprintf("nvbind-bench-%s-%d", m.name, n)
			start := time.Now()
			err := m.create(m.bundle, id)
			d := time.Since(start)
			exec.Command(runc, "--root", runRoot, "delete", "--force", id).Run()
			if err != nil {
				b.Fatalf("%s create: %v", m.name, err)
			}
			times[i] = append(times[i], d)
		}
	}
	baseline, gpuBaseline := pct(times[0], 0.5), pct(times[1], 0.5)
	for i, m := range modes {
		p50 := pct(times[i], 0.5)
		b.ReportMetric(ms(p50), m.name+"-p50-ms")
		if i == 0 {
			continue
		}
		b.ReportMetric(ms(p50-baseline), m.name+"-added-p50-ms")
		if i > 1 {
			b.ReportMetric(ms(p50-gpuBaseline), m.name+"-over-pre-edited-p50-ms")
		}
	}
}
