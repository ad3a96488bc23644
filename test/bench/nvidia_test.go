package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// nvidia_test.go provides NVIDIA's container toolkit as the baseline the
// benchmarks compare nvbind with: nvidia-container-runtime (CDI mode),
// nvidia-cdi-hook and nvidia-ctk, built from the Go module proxy into a
// temporary folder at bench time (nothing fetched is kept), and the CDI
// spec nvidia-ctk generates for the simulated driver root, with a stand-in
// libnvidia-ml (testdata/fakenvml) so that its NVML discovery works there.

// nvidiaToolkit is the toolkit release measured.
const nvidiaToolkit = "v1.20.2"

var (
	nvidiaOnce sync.Once
	nvidiaDir  string
	nvidiaErr  error
)

// buildNVIDIA builds the toolkit's binaries once; it skips the benchmark
// when they cannot be built (no module proxy).
func buildNVIDIA(b *testing.B) string {
	nvidiaOnce.Do(func() {
		nvidiaDir, nvidiaErr = os.MkdirTemp("", "nvidia-toolkit-")
		if nvidiaErr != nil {
			return
		}
		args := []string{"install"}
		for _, c := range []string{"nvidia-container-runtime", "nvidia-cdi-hook", "nvidia-ctk"} {
			args = append(args, "github.com/NVIDIA/nvidia-container-toolkit/cmd/"+c+"@"+nvidiaToolkit)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = os.TempDir() // outside nvbind's module
		cmd.Env = append(os.Environ(), "GOBIN="+nvidiaDir, "GOFLAGS=-mod=mod", "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			nvidiaErr = fmt.Errorf("go install NVIDIA's toolkit %s: %v\n%s", nvidiaToolkit, err, out)
		}
	})
	if nvidiaErr != nil {
		b.Skipf("NVIDIA baseline unavailable: %v", nvidiaErr)
	}
	return nvidiaDir
}

// nvidiaSpec puts the stand-in NVML for gpus GPUs into the driver root and
// writes the spec nvidia-ctk generates for it (nvml mode, JSON) to out.
func nvidiaSpec(b *testing.B, toolkit, root string, gpus int, out string) {
	b.Helper()
	lib := filepath.Join(root, "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.95.05")
	gcc := exec.Command("gcc", "-shared", "-fPIC", "-DNDEV="+strconv.Itoa(gpus), "-Wl,-soname,libnvidia-ml.so.1",
		"-o", lib, "testdata/fakenvml/nvml.c")
	if o, err := gcc.CombinedOutput(); err != nil {
		b.Skipf("NVIDIA baseline unavailable: stand-in NVML: %v: %s", err, o)
	}
	gen := exec.Command(filepath.Join(toolkit, "nvidia-ctk"), "cdi", "generate", "--mode", "nvml",
		"--driver-root", root, "--nvidia-cdi-hook-path", filepath.Join(toolkit, "nvidia-cdi-hook"),
		"--format", "json", "--output", out)
	if o, err := gen.CombinedOutput(); err != nil {
		b.Fatalf("nvidia-ctk cdi generate: %v: %s", err, o)
	}
}

// nvidiaConfig writes nvidia-container-runtime's config (CDI mode, handing
// off to runtime, specs from specDir) and returns the XDG_CONFIG_HOME that
// makes it read it.
func nvidiaConfig(b *testing.B, dir, runtime, specDir string) string {
	b.Helper()
	xdg := filepath.Join(dir, "xdg")
	os.MkdirAll(filepath.Join(xdg, "nvidia-container-runtime"), 0o755)
	cfg := fmt.Sprintf(`[nvidia-container-runtime]
mode = "cdi"
runtimes = [%q]
log-level = "info"
[nvidia-container-runtime.modes.cdi]
spec-dirs = [%q]
default-kind = "nvidia.com/gpu"
`, runtime, specDir)
	if err := os.WriteFile(filepath.Join(xdg, "nvidia-container-runtime/config.toml"), []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	return xdg
}

// baselineDir is NVBIND_BENCH_BASELINE: a folder holding nvbind,
// nvbind-runtime and nvbind-hook built from another commit. The NVIDIA
// comparisons then time that build too, in the same rounds, and report it
// as baseline-*: a before/after that the shared machine's load drifts
// cannot skew. "" when unset.
func baselineDir(b *testing.B) string {
	dir := os.Getenv("NVBIND_BENCH_BASELINE")
	if dir == "" {
		return ""
	}
	for _, bin := range []string{"nvbind", "nvbind-runtime", "nvbind-hook"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			b.Fatalf("NVBIND_BENCH_BASELINE: %v", err)
		}
	}
	return dir
}

// samples is how many creates each variant gets (NVBIND_BENCH_SAMPLES).
func samples(def int) int {
	if n, err := strconv.Atoi(os.Getenv("NVBIND_BENCH_SAMPLES")); err == nil && n > 0 {
		return n
	}
	return def
}

// execOut runs a command and returns its combined output.
func execOut(prog string, args ...string) ([]byte, error) {
	return exec.Command(prog, args...).CombinedOutput()
}

// TestMain removes the binaries the benchmarks built (nvbind's and
// NVIDIA's) when they are done: nothing fetched is kept.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{binDir, nvidiaDir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}
