package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

// newJITSimRoot is a simulated root whose just-in-time spec (in the spec
// dir) has been made by a first GPU create.
func newJITSimRoot(t *testing.T, gpus int, mig bool) *SimRoot {
	t.Helper()
	s := newSimRootDirs(t, gpus)
	if _, err := simroot.Build(s.Dir, simroot.Options{GPUs: gpus, MIG: mig, LDCache: true}); err != nil {
		t.Fatal(err)
	}
	s.JITSpec = filepath.Join(s.SpecDir, "nvidia.json")
	s.WriteConfig(t, "")
	b := newBundle(t, "true")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0")
	b.Save(t)
	if res := runContainer(t, s, b); res.Code != 0 {
		t.Fatalf("first create: %s", res)
	}
	if _, err := os.Stat(s.JITSpec); err != nil {
		t.Fatalf("no just-in-time spec after the first create: %v", err)
	}
	return s
}

func mknod(t *testing.T, path string, major, minor uint32) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := unix.Mknod(path, unix.S_IFCHR|0o666, int(unix.Mkdev(major, minor))); err != nil {
		t.Fatal(err)
	}
}

// TestJITSpecFollowsAddedGPU: a GPU added with the same driver, on a PCI
// bus before the others, shifts the indices; NVIDIA_VISIBLE_DEVICES=0 must
// then be the new GPU, not the one the old spec called 0.
func TestJITSpecFollowsAddedGPU(t *testing.T) {
	requireRoot(t)
	s := newJITSimRoot(t, 2, false)
	info := filepath.Join(s.Dir, "proc/driver/nvidia/gpus/0000:01:00.0/information")
	os.MkdirAll(filepath.Dir(info), 0o755)
	os.WriteFile(info, []byte("Model: \t\t NVIDIA A100-SXM4-80GB\nGPU UUID: \t GPU-99999999-1111-2222-3333-444444444444\n"+
		"Bus Location: \t 0000:01:00.0\nDevice Minor: \t 2\n"), 0o444)
	mknod(t, filepath.Join(s.Dir, "dev/nvidia2"), 195, 2)
	b := newBundle(t, "ls", "/dev")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0")
	b.Save(t)
	res := runContainer(t, s, b)
	if res.Code != 0 {
		t.Fatalf("create: %s", res)
	}
	if got := gpuNodes(res.Stdout); strings.Join(got, " ") != "nvidia2" {
		t.Errorf("GPU 0 after adding a GPU on bus 0000:01:00.0: container sees %v, want [nvidia2]", got)
	}
}

// TestJITSpecFollowsMIGReconfiguration: after GPU instance 1 is destroyed
// and 3 created on GPU 0, MIG device 0:1 is GPU instance 3; the old spec's
// 0:1 (GPU instance 2) must not be handed out under that name.
func TestJITSpecFollowsMIGReconfiguration(t *testing.T) {
	requireRoot(t)
	s := newJITSimRoot(t, 1, true)
	capsDir := filepath.Join(s.Dir, "proc/driver/nvidia/capabilities/gpu0/mig")
	if err := os.RemoveAll(filepath.Join(capsDir, "gi1")); err != nil {
		t.Fatal(err)
	}
	gi3, ci3 := simroot.MIGMinor(0, 3, -1), simroot.MIGMinor(0, 3, 0)
	os.MkdirAll(filepath.Join(capsDir, "gi3/ci0"), 0o755)
	os.WriteFile(filepath.Join(capsDir, "gi3/access"), []byte(fmt.Sprintf("DeviceFileMinor: %d\n", gi3)), 0o444)
	os.WriteFile(filepath.Join(capsDir, "gi3/ci0/access"), []byte(fmt.Sprintf("DeviceFileMinor: %d\n", ci3)), 0o444)
	mknod(t, filepath.Join(s.Dir, fmt.Sprintf("dev/nvidia-caps/nvidia-cap%d", gi3)), simroot.CapsMajor, uint32(gi3))
	mknod(t, filepath.Join(s.Dir, fmt.Sprintf("dev/nvidia-caps/nvidia-cap%d", ci3)), simroot.CapsMajor, uint32(ci3))

	b := newBundle(t, "ls", "/dev/nvidia-caps")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=0:1")
	b.Save(t)
	res := runContainer(t, s, b)
	if res.Code != 0 {
		t.Fatalf("create: %s", res)
	}
	want := []string{fmt.Sprintf("nvidia-cap%d", gi3), fmt.Sprintf("nvidia-cap%d", ci3)}
	old := fmt.Sprintf("nvidia-cap%d", simroot.MIGMinor(0, 2, -1))
	for _, w := range want {
		if !strings.Contains(res.Stdout, w) {
			t.Errorf("MIG 0:1 lacks %s (GPU instance 3): %q", w, res.Stdout)
		}
	}
	if strings.Contains(res.Stdout, old+"\n") {
		t.Errorf("MIG 0:1 resolved to GPU instance 2 (%s) of the old layout: %q", old, res.Stdout)
	}
}

// TestJITSpecReadOnlyDir: when the just-in-time spec cannot be written,
// creates still get the right devices (from a spec made in memory), and
// the failure is remembered so the next create does not retry the write.
func TestJITSpecReadOnlyDir(t *testing.T) {
	requireRoot(t)
	s := newJITSimRoot(t, 2, false)
	stateDir := filepath.Join(filepath.Dir(s.Config), "state") // the harness config's state-dir
	// Make the spec stale (another driver), then the spec dir unwritable:
	// a bind mount of it onto itself, read-only.
	data, _ := os.ReadFile(s.JITSpec)
	os.WriteFile(s.JITSpec, []byte(strings.ReplaceAll(string(data), "NVBIND_DRIVER_VERSION=580.95.05", "NVBIND_DRIVER_VERSION=570.86.15")), 0o644)
	if err := unix.Mount(s.SpecDir, s.SpecDir, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(s.SpecDir, unix.MNT_DETACH) })
	if err := unix.Mount("", s.SpecDir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	os.Truncate(s.LogFile(), 0)
	for i := 0; i < 2; i++ {
		b := newBundle(t, "sh", "-c", "ls /dev; echo driver=$NVBIND_DRIVER_VERSION")
		b.SetEnv("NVIDIA_VISIBLE_DEVICES=1")
		b.Save(t)
		res := runContainer(t, s, b)
		if res.Code != 0 {
			t.Fatalf("create %d with a read-only spec dir: %s", i, res)
		}
		if got := gpuNodes(res.Stdout); strings.Join(got, " ") != "nvidia1" || !strings.Contains(res.Stdout, "driver=580.95.05") {
			t.Errorf("create %d: %v\n%s", i, got, res.Stdout)
		}
	}
	log, _ := os.ReadFile(s.LogFile())
	if n := strings.Count(string(log), jitLogLine); n != 1 {
		t.Errorf("tried to write the spec %d times over two creates, want once (then remembered):\n%s", n, log)
	}
	entries, _ := os.ReadDir(stateDir)
	entries = slices.DeleteFunc(entries, func(e os.DirEntry) bool {
		return e.Name() == "links" // the /dev/dri links nvbind-runtime mounts (internal/hookfold)
	})
	if len(entries) != 1 {
		t.Errorf("state dir holds %v, want the remembered failure", entries)
	}
}
