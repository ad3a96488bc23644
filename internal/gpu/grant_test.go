package gpu

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// procfsRoot writes the procfs files of n GPUs (bus order = index) under a
// temporary root; GPU i has minor 7-i, so index and minor differ.
func procfsRoot(t *testing.T, n int) (string, []string) {
	t.Helper()
	root := t.TempDir()
	var uuids []string
	os.MkdirAll(filepath.Join(root, "proc/driver/nvidia"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/driver/nvidia/version"), []byte("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05  Tue Sep 23 09:58:26 UTC 2025\n"), 0o644)
	for i := 0; i < n; i++ {
		bus := fmt.Sprintf("0000:%02x:00.0", 0x10+i)
		uuid := fmt.Sprintf("GPU-%08x-1111-2222-3333-444444444444", i)
		uuids = append(uuids, uuid)
		dir := filepath.Join(root, "proc/driver/nvidia/gpus", bus)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "information"), []byte(fmt.Sprintf("Model: \t NVIDIA A100\nGPU UUID: \t %s\nBus Location: \t %s\nDevice Minor: \t %d\n", uuid, bus, 7-i)), 0o644)
	}
	return root, uuids
}

func TestResolveGranted(t *testing.T) {
	root, u := procfsRoot(t, 3)
	isGPU := func(k string) bool { return k == "nvidia.com/gpu" || k == "nvidia.com/mig" }
	tests := []struct {
		name    string
		devices []string
		want    []Granted
	}{
		{"none", []string{"nvidia.com/gpu=driver", "nvidia.com/gpu=capability-graphics", "amd.com/gpu=0"}, nil},
		{"index", []string{"nvidia.com/gpu=1"}, []Granted{{Name: "nvidia.com/gpu=1", Index: "1", UUID: u[1]}}},
		{"uuid", []string{"nvidia.com/gpu=" + u[2]}, []Granted{{Name: "nvidia.com/gpu=" + u[2], Index: "2", UUID: u[2]}}},
		{"all", []string{"nvidia.com/gpu=all"}, []Granted{
			{Name: "nvidia.com/gpu=0", Index: "0", UUID: u[0]}, {Name: "nvidia.com/gpu=1", Index: "1", UUID: u[1]}, {Name: "nvidia.com/gpu=2", Index: "2", UUID: u[2]}}},
		{"mig pair", []string{"nvidia.com/mig=1:3"}, []Granted{{Name: "nvidia.com/mig=1:3", Index: "1:3", Parent: u[1], MIG: true}}},
		{"unknown index kept", []string{"nvidia.com/gpu=9"}, []Granted{{Name: "nvidia.com/gpu=9", Index: "9"}}},
		{"unknown uuid kept", []string{"nvidia.com/gpu=GPU-ffffffff-1111-2222-3333-444444444444"},
			[]Granted{{Name: "nvidia.com/gpu=GPU-ffffffff-1111-2222-3333-444444444444", UUID: "GPU-ffffffff-1111-2222-3333-444444444444"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ResolveGranted(root, isGPU, tt.devices); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestAsksForGPU(t *testing.T) {
	isGPU := func(k string) bool { return k == "nvidia.com/gpu" }
	for devs, want := range map[string]bool{
		"nvidia.com/gpu=all": true, "nvidia.com/gpu=0": true, "nvidia.com/gpu=driver": false,
		"nvidia.com/gpu=capability-graphics": false, "amd.com/gpu=0": false, "": false,
	} {
		if got := AsksForGPU(isGPU, []string{devs}); got != want {
			t.Errorf("AsksForGPU(%q) = %v", devs, got)
		}
	}
}
