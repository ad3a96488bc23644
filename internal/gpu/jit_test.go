package gpu_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

// setDriverVersion rewrites the root's proc version file: a driver upgrade.
func setDriverVersion(t *testing.T, root, v string) {
	t.Helper()
	p := filepath.Join(root, "proc/driver/nvidia/version")
	os.Chmod(p, 0o644)
	line := "NVRM version: NVIDIA UNIX x86_64 Kernel Module  " + v + "  Thu Oct  9 00:00:00 UTC 2025\n"
	if err := os.WriteFile(p, []byte(line), 0o444); err != nil {
		t.Fatal(err)
	}
}

func TestWriteJITSpec(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 2})
	path := filepath.Join(t.TempDir(), "run/cdi/nvidia.yaml")
	opts := gpu.GenerateOptions{DriverRoot: r.Dir, HookPath: hookPath}

	before := gpu.JITWrites.Load()
	if err := gpu.WriteJITSpec(path, opts); err != nil {
		t.Fatal(err)
	}
	if v, err := gpu.SpecFileDriverVersion(path); err != nil || v != r.DriverVersion {
		t.Fatalf("recorded version %q, %v", v, err)
	}
	st1, _ := os.Stat(path)
	// Fresh: nothing is rewritten.
	if err := gpu.WriteJITSpec(path, opts); err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(path)
	if !os.SameFile(st1, st2) || gpu.JITWrites.Load()-before != 1 {
		t.Error("a fresh spec was rewritten")
	}
	// Driver upgrade: the spec is stale and regenerated once.
	setDriverVersion(t, r.Dir, "580.105.08")
	if err := gpu.WriteJITSpec(path, opts); err != nil {
		t.Fatal(err)
	}
	if v, _ := gpu.SpecFileDriverVersion(path); v != "580.105.08" {
		t.Errorf("after upgrade the spec records %q", v)
	}
	if gpu.JITWrites.Load()-before != 2 {
		t.Errorf("%d writes, want 2", gpu.JITWrites.Load()-before)
	}
	data, _ := os.ReadFile(path)
	if err := gpu.Validate(data); err != nil {
		t.Error(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
}

func TestWriteJITSpecConcurrentCreatesRegenerateOnce(t *testing.T) {
	r := buildRoot(t, simroot.Options{GPUs: 4})
	path := filepath.Join(t.TempDir(), "nvidia.yaml")
	if err := os.WriteFile(path, []byte("# stale\ncontainerEdits:\n  env:\n    - NVBIND_DRIVER_VERSION=470.1.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := gpu.GenerateOptions{DriverRoot: r.Dir, HookPath: hookPath}
	before := gpu.JITWrites.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- gpu.WriteJITSpec(path, opts)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := gpu.JITWrites.Load() - before; n != 1 {
		t.Errorf("%d regenerations under 16 concurrent creates, want 1", n)
	}
	if v, _ := gpu.SpecFileDriverVersion(path); v != r.DriverVersion {
		t.Errorf("recorded %q", v)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".nvidia.yaml.tmp-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestWriteJITSpecNoDriver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nvidia.yaml")
	err := gpu.WriteJITSpec(path, gpu.GenerateOptions{DriverRoot: t.TempDir(), HookPath: hookPath})
	if err == nil || !strings.Contains(err.Error(), "no NVIDIA driver loaded") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("a spec was written without a driver")
	}
}

func TestSpecFileDriverVersion(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"a.yaml": "containerEdits:\n  env:\n    - NVBIND_DRIVER_VERSION=580.95.05\n",
		"b.json": `{"containerEdits":{"env":["NVBIND_DRIVER_VERSION=580.95.05"]}}`,
		"c.yaml": "containerEdits:\n  env:\n    - \"NVBIND_DRIVER_VERSION=580.95.05\"\n",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		if v, err := gpu.SpecFileDriverVersion(p); err != nil || v != "580.95.05" {
			t.Errorf("%s: %q, %v", name, v, err)
		}
	}
	p := filepath.Join(dir, "other.yaml")
	os.WriteFile(p, []byte("cdiVersion: 0.5.0\n"), 0o644)
	if v, _ := gpu.SpecFileDriverVersion(p); v != "" {
		t.Errorf("foreign spec: %q", v)
	}
}
