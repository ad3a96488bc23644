package gpu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/config"
)

const gib = 1 << 30

func testInventory() *Inventory {
	return &Inventory{Source: SourceNVML, DriverVersion: "580.95.05", GPUs: []GPU{
		{Index: 0, UUID: "GPU-aaaa", MemoryBytes: 80 * gib, MIGDevices: []MIG{{Index: 1, UUID: "MIG-bbbb", MemoryBytes: 10 * gib}}},
		{Index: 1, UUID: "GPU-cccc", MemoryBytes: 24 * gib},
	}}
}

func TestDeviceMemory(t *testing.T) {
	const k = "nvidia.com/gpu"
	tests := []struct {
		name    string
		devices []string
		want    []uint64
		err     string
	}{
		{"index", []string{k + "=1"}, []uint64{24 * gib}, ""},
		{"uuid", []string{k + "=GPU-aaaa"}, []uint64{80 * gib}, ""},
		{"all", []string{k + "=all"}, []uint64{80 * gib, 24 * gib}, ""},
		{"mig pair and uuid", []string{k + "=0:1", k + "=MIG-bbbb"}, []uint64{10 * gib, 10 * gib}, ""},
		{"driver, capability and other kinds carry no GPU", []string{k + "=driver", k + "=capability-graphics", "example.com/nic=0"}, nil, ""},
		{"unknown", []string{k + "=7"}, nil, "device nvidia.com/gpu=7 is not in the GPU inventory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DeviceMemory(testInventory(), k, tt.devices)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("got %v %v, want %v", got, err, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestDeviceMemoryForChecksDriver(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "proc/driver/nvidia"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/driver/nvidia/version"),
		[]byte("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05  Tue Sep 23 09:58:26 UTC 2025\n"), 0o444)
	cfg := config.Default()
	cfg.Driver.Root = root
	cfg.Driver.Inventory = filepath.Join(dir, "run", "inventory.json")

	if _, err := DeviceMemoryFor(cfg, []string{"nvidia.com/gpu=0"}); err == nil || !strings.Contains(err.Error(), "nvbind cdi generate") {
		t.Fatalf("missing inventory: %v", err)
	}
	if err := SaveInventory(cfg.Driver.Inventory, testInventory()); err != nil {
		t.Fatal(err)
	}
	got, err := DeviceMemoryFor(cfg, []string{"nvidia.com/gpu=0"})
	if err != nil || len(got) != 1 || got[0] != 80*gib {
		t.Fatalf("got %v %v", got, err)
	}
	stale := testInventory()
	stale.DriverVersion = "570.86.15"
	SaveInventory(cfg.Driver.Inventory, stale)
	if _, err := DeviceMemoryFor(cfg, []string{"nvidia.com/gpu=0"}); err == nil || !strings.Contains(err.Error(), "is for driver 570.86.15, the running driver is 580.95.05") {
		t.Fatalf("stale inventory: %v", err)
	}
}
