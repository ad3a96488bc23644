package gpu

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseNVRMVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\nGCC version:  gcc 12\n", "550.54.14"},
		{"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.95.05  Release Build  (dvs-builder@U22)  Tue Sep 23 09:39:29 UTC 2025\n", "580.95.05"},
		{"NVRM version: NVIDIA UNIX aarch64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n", "535.104.05"},
		{"NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.256.02  Thu May  2 14:37:44 UTC 2024\n", "470.256.02"},
	} {
		got, err := parseNVRMVersion([]byte(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("parseNVRMVersion(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "GCC version: 12.2\n", "NVRM version: NVIDIA UNIX x86_64 Kernel Module\n"} {
		if v, err := parseNVRMVersion([]byte(bad)); err == nil {
			t.Errorf("parseNVRMVersion(%q) = %q, want an error", bad, v)
		}
	}
}

func TestReadDriverVersionNoDriver(t *testing.T) {
	_, err := ReadDriverVersion(t.TempDir())
	if !errors.Is(err, ErrNoDriver) {
		t.Fatalf("err = %v, want ErrNoDriver", err)
	}
}

func TestParseInformation(t *testing.T) {
	info := "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 41\nGPU UUID: \t GPU-5c4b39ef-5a1b-2c1f-0c4a-1d2e3f4a5b6c\n" +
		"Video BIOS: \t 96.00.99.00.01\nBus Type: \t PCIe\nDMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\n" +
		"Bus Location: \t 0000:1B:00.0\nDevice Minor: \t 3\nGPU Firmware: \t 580.95.05\nGPU Excluded:\t No\n"
	g, err := parseInformation([]byte(info))
	if err != nil {
		t.Fatal(err)
	}
	want := GPU{Minor: 3, UUID: "GPU-5c4b39ef-5a1b-2c1f-0c4a-1d2e3f4a5b6c", Name: "NVIDIA H100 80GB HBM3",
		BusID: "0000:1b:00.0", ComputeCapability: "9.0", Brand: "nvidia"}
	if g.Minor != want.Minor || g.UUID != want.UUID || g.Name != want.Name || g.BusID != want.BusID ||
		g.ComputeCapability != want.ComputeCapability || g.Brand != want.Brand {
		t.Errorf("got %+v, want %+v", g, want)
	}
	for _, bad := range []string{"Model: x\n", "Device Minor: \t abc\n", "Device Minor: \t 999\n"} {
		if _, err := parseInformation([]byte(bad)); err == nil {
			t.Errorf("parseInformation(%q) accepted", bad)
		}
	}
}

func TestProcRootFallsBackToHost(t *testing.T) {
	root := t.TempDir()
	if got := procRoot(root); got != "/" {
		t.Errorf("procRoot(empty root) = %q, want /", got)
	}
	os.MkdirAll(filepath.Join(root, "proc/driver/nvidia"), 0o755)
	if got := procRoot(root); got != root {
		t.Errorf("procRoot(root with proc) = %q, want %q", got, root)
	}
}
