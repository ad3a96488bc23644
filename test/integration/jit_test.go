package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const jitLogLine = "writing just-in-time CDI spec"

// TestJITSpecRegeneratedOnceUnderConcurrentCreates: after a driver upgrade
// the spec on disk is stale; concurrent creates must all succeed, and only
// one of them regenerates the spec.
func TestJITSpecRegeneratedOnceUnderConcurrentCreates(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 2)
	s.JITSpec = filepath.Join(s.SpecDir, "nvidia.yaml")
	s.WriteConfig(t, "")
	spec := filepath.Join(s.SpecDir, "nvidia.yaml")
	data, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	// The spec was made for the previous driver.
	stale := strings.ReplaceAll(string(data), "NVBIND_DRIVER_VERSION=580.95.05", "NVBIND_DRIVER_VERSION=570.86.15")
	if stale == string(data) {
		t.Fatal("generated spec does not record the driver version")
	}
	if err := os.WriteFile(spec, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}

	const n = 4
	results := make([]Result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		b := newBundle(t, "sh", "-c", "ls /dev; echo driver=$NVBIND_DRIVER_VERSION")
		b.SetEnv("NVIDIA_VISIBLE_DEVICES=1")
		b.Save(t)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = runContainer(t, s, b)
		}(i)
	}
	wg.Wait()
	for i, res := range results {
		if res.Code != 0 {
			t.Fatalf("create %d failed: %s", i, res)
		}
		if got := gpuNodes(res.Stdout); strings.Join(got, " ") != "nvidia1" {
			t.Errorf("create %d sees %v, want [nvidia1]", i, got)
		}
		if !strings.Contains(res.Stdout, "driver=580.95.05") {
			t.Errorf("create %d got a spec for another driver:\n%s", i, res.Stdout)
		}
	}
	log, _ := os.ReadFile(s.LogFile())
	if c := strings.Count(string(log), jitLogLine); c != 1 {
		t.Errorf("spec regenerated %d times, want once; log:\n%s", c, log)
	}
	fresh, _ := os.ReadFile(spec)
	if !strings.Contains(string(fresh), "NVBIND_DRIVER_VERSION=580.95.05") {
		t.Errorf("spec on disk still stale")
	}
}

// TestJITSpecWhenNoSpecExists: a GPU request with an empty spec dir gets a
// spec generated on the spot; a later create reuses it.
func TestJITSpecWhenNoSpecExists(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 2)
	os.Remove(filepath.Join(s.SpecDir, "nvidia.yaml"))
	s.JITSpec = filepath.Join(t.TempDir(), "run-cdi", "nvidia.yaml")
	s.WriteConfig(t, "")
	for i := 0; i < 2; i++ {
		b := newBundle(t, "ls", "/dev")
		b.SetEnv("NVIDIA_VISIBLE_DEVICES=all")
		b.Save(t)
		res := runContainer(t, s, b)
		if res.Code != 0 {
			t.Fatalf("create %d: %s", i, res)
		}
		if got := gpuNodes(res.Stdout); strings.Join(got, " ") != "nvidia0 nvidia1" {
			t.Errorf("create %d sees %v", i, got)
		}
	}
	if _, err := os.Stat(s.JITSpec); err != nil {
		t.Errorf("no JIT spec written: %v", err)
	}
	log, _ := os.ReadFile(s.LogFile())
	if c := strings.Count(string(log), jitLogLine); c != 1 {
		t.Errorf("spec generated %d times over two creates, want once; log:\n%s", c, log)
	}
}

// TestRequirementsUnmet: NVIDIA_REQUIRE_CUDA above what the driver offers
// fails create with a message naming it and what the host has.
func TestRequirementsUnmet(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 1)
	b := newBundle(t, "true")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99.0")
	b.Save(t)
	before := b.ReadConfig(t)
	// Refused, naming cuda>=99.0 and the host's CUDA 13.0.
	assertRefused(t, s, b, before, runContainer(t, s, b), "cuda>=99.0", "13.0")
	b.SetEnv("NVIDIA_DISABLE_REQUIRE=true")
	b.Save(t)
	if res := runContainer(t, s, b); res.Code != 0 {
		t.Fatalf("NVIDIA_DISABLE_REQUIRE did not switch the check off: %s", res)
	}
}

// With hook.path unset, specs call the nvbind-hook installed beside the
// nvbind binaries (make install puts the three together).
func TestGeneratedSpecCallsHookBesideBinaries(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 1)
	cfg := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[driver]\nroot = %q\n", s.Dir)), 0o644)
	out := filepath.Join(t.TempDir(), "nvidia.yaml")
	res := runCmd(t, []string{"NVBIND_CONFIG=" + cfg}, bins.CLI, "cdi", "generate", "--no-nvml", "--output", out)
	if res.Code != 0 {
		t.Fatalf("generate: %s", res)
	}
	spec, _ := os.ReadFile(out)
	if !strings.Contains(string(spec), `"path":"`+bins.Hook+`"`) {
		t.Errorf("spec does not call %s:\n%.2000s", bins.Hook, spec)
	}
}
