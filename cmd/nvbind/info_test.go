package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInfoJSON(t *testing.T) {
	root, specDir := simRoot(t, 2)
	os.MkdirAll(specDir, 0o755)
	// A spec made for another driver: info must call it stale.
	os.WriteFile(filepath.Join(specDir, "nvidia.yaml"), []byte(`cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
  - name: "0"
    containerEdits:
      deviceNodes:
        - path: /dev/nvidia0
containerEdits:
  env:
    - NVBIND_DRIVER_VERSION=470.256.02
`), 0o644)
	code, out, errs := gpuCLI(infoCLI, "--json", "--no-nvml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r struct {
		Source, DriverRoot, DriverVersion, CUDAVersion, Runtime string
		GPUs                                                    []struct{ UUID, BusID string }
		Specs                                                   []struct {
			Path, DriverVersion string
			Fresh               bool
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Source != "procfs" || r.DriverRoot != root || r.DriverVersion != "580.95.05" || r.CUDAVersion != "13.0" || len(r.GPUs) != 2 {
		t.Errorf("report = %+v", r)
	}
	if len(r.Specs) != 1 || r.Specs[0].Fresh || r.Specs[0].DriverVersion != "470.256.02" {
		t.Errorf("specs = %+v", r.Specs)
	}
	if !strings.HasSuffix(r.Runtime, "/runc") {
		t.Errorf("runtime = %q", r.Runtime)
	}

	// After generate, the spec is fresh and the text output says so.
	if code, _, errs := gpuCLI(cdiCLI, "generate"); code != 0 {
		t.Fatal(errs)
	}
	code, out, _ = gpuCLI(infoCLI, "--no-nvml")
	for _, want := range []string{"Driver version:  580.95.05\n", "CUDA version:    13.0\n", "Discovery:       procfs\n", "GPUs:            2\n",
		"CDI spec:        " + filepath.Join(specDir, "nvidia.yaml") + " (fresh, ", "Runtime:         /"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}
}

func TestInfoWithoutDriver(t *testing.T) {
	simRoot(t, 1)
	code, out, _ := gpuCLI(infoCLI, "--driver-root", t.TempDir())
	if code != 0 || !strings.Contains(out, "NVIDIA driver:   none (no NVIDIA driver loaded") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}
