package simroot

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSharedObjectSONAME(t *testing.T) {
	for _, class64 := range []bool{true, false} {
		p := filepath.Join(t.TempDir(), "libx.so.1.2")
		if err := os.WriteFile(p, sharedObject("libx.so.1", class64), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := elf.Open(p)
		if err != nil {
			t.Fatalf("class64=%v: debug/elf rejects it: %v", class64, err)
		}
		names, err := f.DynString(elf.DT_SONAME)
		f.Close()
		if err != nil || len(names) != 1 || names[0] != "libx.so.1" {
			t.Fatalf("class64=%v: DT_SONAME = %v, %v; want [libx.so.1]", class64, names, err)
		}
		wantClass := elf.ELFCLASS32
		if class64 {
			wantClass = elf.ELFCLASS64
		}
		if f.Class != wantClass || f.Type != elf.ET_DYN {
			t.Fatalf("class64=%v: got class %v type %v", class64, f.Class, f.Type)
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("simroot needs root for mknod")
	}
}

func TestBuild(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	r, err := Build(dir, Options{GPUs: 3, MIG: true, Compat32: true, LDCache: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GPUs) != 3 || r.DriverVersion != DefaultDriverVersion {
		t.Fatalf("root = %+v", r)
	}
	nodes := map[string][2]uint32{
		"dev/nvidia0": {195, 0}, "dev/nvidia2": {195, 2}, "dev/nvidiactl": {195, 255},
		"dev/nvidia-modeset": {195, 254}, "dev/nvidia-uvm": {UVMMajor, 0}, "dev/nvidia-uvm-tools": {UVMMajor, 1},
		"dev/nvidia-caps/nvidia-cap1": {CapsMajor, 1}, "dev/dri/renderD129": {DRMMajor, 129},
	}
	for rel, want := range nodes {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, rel), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != want[0] || unix.Minor(st.Rdev) != want[1] {
			t.Errorf("%s: mode %o dev %d:%d, want char %d:%d", rel, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), want[0], want[1])
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "run/nvidia-persistenced/socket")); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("persistenced socket: %v %v", fi, err)
	}
	info, err := os.ReadFile(filepath.Join(dir, "proc/driver/nvidia/gpus/0000:0f:00.0/information"))
	if err != nil || !strings.Contains(string(info), "GPU UUID: \t "+r.GPUs[1].UUID) || !strings.Contains(string(info), "Device Minor: \t 1\n") {
		t.Errorf("information file: %q %v", info, err)
	}
	if link, err := os.Readlink(filepath.Join(dir, "dev/dri/by-path/pci-0000:47:00.0-render")); err != nil || link != "../renderD130" {
		t.Errorf("by-path link = %q %v", link, err)
	}

	// The host's ldconfig must accept the libraries and list their SONAMEs
	// (under /lib, as on a real merged-/usr Debian host: /lib comes first
	// in ld.so.conf).
	out, err := exec.Command("ldconfig", "-p", "-C", filepath.Join(dir, "etc/ld.so.cache")).CombinedOutput()
	if err != nil {
		t.Fatalf("ldconfig -p: %v: %s", err, out)
	}
	for _, want := range []string{
		"libcuda.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libcuda.so.1",
		"libcuda.so.1 (libc6) => /lib/i386-linux-gnu/libcuda.so.1",
		"libnvidia-ml.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libnvidia-ml.so.1",
		"libnvidia-glcore.so.580.95.05 (libc6,x86-64)",
		"libnvidia-egl-gbm.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libnvidia-egl-gbm.so.1",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ldconfig -p lacks %q", want)
		}
	}
	for _, lib := range r.Libraries {
		if _, err := os.Stat(filepath.Join(dir, lib)); err != nil {
			t.Errorf("library %s: %v", lib, err)
		}
	}
}

func TestBuildRejectsBadOptions(t *testing.T) {
	if _, err := Build(t.TempDir(), Options{GPUs: -1}); err == nil {
		t.Error("negative GPU count accepted")
	}
	if _, err := Build(t.TempDir(), Options{DriverVersion: "../x"}); err == nil {
		t.Error("driver version with a slash accepted")
	}
}

func TestBuildWSL(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	r, err := Build(dir, Options{WSL: true, LDCache: true})
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "dev/dxg"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != DXGMajor {
		t.Fatalf("/dev/dxg: %v %+v", err, st)
	}
	rel, _ := os.ReadFile(filepath.Join(dir, "proc/sys/kernel/osrelease"))
	if !strings.Contains(string(rel), "microsoft-standard-WSL2") {
		t.Errorf("kernel release %q", rel)
	}
	for file, soname := range map[string]string{
		"usr/lib/wsl/lib/libcuda.so.1":                    "libcuda.so.1",
		"usr/lib/wsl/lib/libnvdxgdmal.so.1":               "libnvdxgdmal.so.1",
		r.WSLStore[1:] + "/libcuda.so.1.1":                "libcuda.so.1",
		r.WSLStore[1:] + "/libnvidia-ptxjitcompiler.so.1": "libnvidia-ptxjitcompiler.so.1",
	} {
		f, err := elf.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		names, _ := f.DynString(elf.DT_SONAME)
		f.Close()
		if len(names) != 1 || names[0] != soname {
			t.Errorf("%s: SONAME %v, want %s", file, names, soname)
		}
	}
	out, err := exec.Command("ldconfig", "-p", "-C", filepath.Join(dir, "etc/ld.so.cache")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "libcuda.so.1 (libc6,x86-64) => /usr/lib/wsl/lib/libcuda.so.1") {
		t.Errorf("ld.so.cache: %v\n%s", err, out)
	}
}

func TestBuildSysfs(t *testing.T) {
	requireRoot(t)
	for _, tt := range []struct {
		opts Options
		want string
	}{
		{Options{GPUs: 1, VFIOGPUs: 1, Hybrid: true}, "0000:00:02.0=i915 0000:07:00.0=nvidia 0000:e0:00.0=vfio-pci"},
		{Options{GPUs: 2, Kernel: KernelNouveau}, "0000:07:00.0=nouveau 0000:0f:00.0=nouveau"},
	} {
		dir := t.TempDir()
		r, err := Build(dir, tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		ents, _ := os.ReadDir(filepath.Join(dir, "sys/bus/pci/devices"))
		for _, e := range ents {
			link, err := os.Readlink(filepath.Join(dir, "sys/bus/pci/devices", e.Name(), "driver"))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e.Name()+"="+filepath.Base(link))
		}
		if strings.Join(got, " ") != tt.want || len(r.PCI) != len(got) {
			t.Errorf("%+v: %v (%d in Root.PCI), want %s", tt.opts, got, len(r.PCI), tt.want)
		}
	}
}
