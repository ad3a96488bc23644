package gpu_test

import (
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

func TestReadHostGPUs(t *testing.T) {
	tests := []struct {
		name       string
		opts       simroot.Options
		flavour    gpu.Flavour
		nvidia     int
		unusable   []string // drivers of the unusable NVIDIA GPUs
		integrated int
	}{
		{"open", simroot.Options{GPUs: 2}, gpu.FlavourOpen, 2, nil, 0},
		{"proprietary", simroot.Options{GPUs: 1, Kernel: simroot.KernelProprietary}, gpu.FlavourProprietary, 1, nil, 0},
		{"nouveau", simroot.Options{GPUs: 1, Kernel: simroot.KernelNouveau}, gpu.FlavourNouveau, 1, []string{"nouveau"}, 0},
		{"vfio", simroot.Options{GPUs: 1, VFIOGPUs: 1}, gpu.FlavourOpen, 2, []string{"vfio-pci"}, 0},
		{"hybrid", simroot.Options{GPUs: 1, Hybrid: true}, gpu.FlavourOpen, 1, nil, 1},
		{"hybrid nouveau", simroot.Options{GPUs: 1, Hybrid: true, Kernel: simroot.KernelNouveau}, gpu.FlavourNouveau, 1, []string{"nouveau"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := buildRoot(t, tt.opts)
			h := gpu.ReadHostGPUs(r.Dir, "")
			if h.Flavour != tt.flavour {
				t.Errorf("flavour %s (%s), want %s", h.Flavour, h.FlavourDetail, tt.flavour)
			}
			if n := len(h.NVIDIA()); n != tt.nvidia {
				t.Errorf("%d NVIDIA GPUs, want %d: %+v", n, tt.nvidia, h.PCI)
			}
			var drivers []string
			for _, p := range h.Unusable() {
				drivers = append(drivers, p.Driver)
				if p.Problem == "" || p.Fix == "" {
					t.Errorf("%s: no problem or fix", p)
				}
			}
			if strings.Join(drivers, ",") != strings.Join(tt.unusable, ",") {
				t.Errorf("unusable %v, want %v", drivers, tt.unusable)
			}
			if n := len(h.Integrated()); n != tt.integrated || h.Hybrid() != (tt.integrated > 0) {
				t.Errorf("%d integrated, hybrid %v", n, h.Hybrid())
			}
		})
	}
}

func TestExplainMissingFlavour(t *testing.T) {
	tests := []struct {
		name  string
		opts  simroot.Options
		names []string
		want  string // "" = nothing to explain
	}{
		{"open, known index", simroot.Options{GPUs: 2}, []string{"5"}, ""},
		{"vfio index", simroot.Options{GPUs: 1, VFIOGPUs: 1}, []string{"1"}, "GPU 1 is not usable for containers: 0000:e0:00.0 (NVIDIA 10de:20b2, driver vfio-pci) is bound to vfio-pci"},
		{"vfio served index", simroot.Options{GPUs: 1, VFIOGPUs: 1}, []string{"0"}, ""},
		{"nouveau all", simroot.Options{GPUs: 1, Kernel: simroot.KernelNouveau}, []string{"all"}, "bound to nouveau, the open-source driver without CUDA (fix: install the NVIDIA driver"},
		{"vfio uuid", simroot.Options{GPUs: 1, VFIOGPUs: 1}, []string{"GPU-0000"}, "GPU GPU-0000 is not a GPU the NVIDIA driver serves; NVIDIA GPUs not usable for containers: 0000:e0:00.0"},
		{"nouveau driver only", simroot.Options{GPUs: 1, Kernel: simroot.KernelNouveau}, []string{"0"}, "the NVIDIA driver serves no GPU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := buildRoot(t, tt.opts)
			err := gpu.ExplainMissing(r.Dir, tt.names)
			if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
