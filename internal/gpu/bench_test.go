package gpu_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

func benchRoot(b *testing.B, gpus int) string {
	b.Helper()
	dir := b.TempDir()
	if _, err := simroot.Build(dir, simroot.Options{GPUs: gpus, LDCache: true}); err != nil {
		b.Skip(err)
	}
	return dir
}

func benchmarkGenerate(b *testing.B, gpus int) {
	root := benchRoot(b, gpus)
	opts := gpu.GenerateOptions{DriverRoot: root, HookPath: "/usr/local/bin/nvbind-hook"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := gpu.Generate(opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerate4GPUs(b *testing.B) { benchmarkGenerate(b, 4) }
func BenchmarkGenerate8GPUs(b *testing.B) { benchmarkGenerate(b, 8) }

// tmpfsDir is a directory on tmpfs, like /var/run/cdi on a real host.
func tmpfsDir(b *testing.B) string {
	b.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "nvbind-bench-")
	if err != nil {
		b.Skip("no /dev/shm")
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// BenchmarkWriteJITSpecStale measures a create that finds the spec stale:
// lock, discover, generate, validate, atomic write (with fsync) to tmpfs,
// where /var/run/cdi lives on a real host.
func BenchmarkWriteJITSpecStale(b *testing.B) { benchmarkJITStale(b, tmpfsDir(b)) }

// BenchmarkWriteJITSpecStaleDisk is the same with the spec on disk, where
// the two fsyncs of the atomic write dominate.
func BenchmarkWriteJITSpecStaleDisk(b *testing.B) { benchmarkJITStale(b, b.TempDir()) }

func benchmarkJITStale(b *testing.B, dir string) {
	root := benchRoot(b, 4)
	path := filepath.Join(dir, "nvidia.yaml")
	opts := gpu.GenerateOptions{DriverRoot: root, HookPath: "/usr/local/bin/nvbind-hook"}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if err := gpu.WriteSpecFile(path, []byte("NVBIND_DRIVER_VERSION=1.0\n")); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := gpu.WriteJITSpec(path, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteJITSpecFresh measures a create that finds the spec fresh.
func BenchmarkWriteJITSpecFresh(b *testing.B) {
	root := benchRoot(b, 4)
	path := filepath.Join(b.TempDir(), "nvidia.yaml")
	opts := gpu.GenerateOptions{DriverRoot: root, HookPath: "/usr/local/bin/nvbind-hook"}
	if err := gpu.WriteJITSpec(path, opts); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := gpu.WriteJITSpec(path, opts); err != nil {
			b.Fatal(err)
		}
	}
}
