package integration

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRequirementsCUDAVersion: an image with CUDA_VERSION and no
// NVIDIA_REQUIRE_CUDA requires cuda>=CUDA_VERSION; NVIDIA_DISABLE_REQUIRE
// is read as strconv.ParseBool reads it.
func TestRequirementsCUDAVersion(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 1)
	b := newBundle(t, "true")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0", "CUDA_VERSION=99.1.0")
	b.Save(t)
	before := b.ReadConfig(t)
	assertRefused(t, s, b, before, runContainer(t, s, b), "CUDA_VERSION", "cuda>=99.1", "13.0")
	// "f" is false to ParseBool: checks stay on.
	b.SetEnv("NVIDIA_DISABLE_REQUIRE=f")
	b.Save(t)
	assertRefused(t, s, b, b.ReadConfig(t), runContainer(t, s, b), "cuda>=99.1")
	b.SetEnv("NVIDIA_DISABLE_REQUIRE=TRUE")
	b.Save(t)
	if res := runContainer(t, s, b); res.Code != 0 {
		t.Fatalf("NVIDIA_DISABLE_REQUIRE=TRUE did not switch the check off: %s", res)
	}
	// A CUDA_VERSION the driver offers runs.
	b2 := newBundle(t, "true")
	b2.SetEnv("NVIDIA_VISIBLE_DEVICES=0", "CUDA_VERSION=12.4.1")
	b2.Save(t)
	if res := runContainer(t, s, b2); res.Code != 0 {
		t.Fatalf("CUDA_VERSION=12.4.1 on a CUDA 13.0 driver: %s", res)
	}
}

// TestRequirementsUnreadableFacts: when the host's driver facts cannot be
// read, a container with requirements is refused with a message saying so
// instead of starting unchecked.
func TestRequirementsUnreadableFacts(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 1)
	if err := os.Remove(filepath.Join(s.Dir, "proc/driver/nvidia/version")); err != nil {
		t.Fatal(err)
	}
	b := newBundle(t, "true")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=11.0")
	b.Save(t)
	assertRefused(t, s, b, b.ReadConfig(t), runContainer(t, s, b), "cannot check", "NVIDIA_REQUIRE_CUDA=cuda>=11.0", "unreadable")
}
