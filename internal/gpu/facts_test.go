package gpu

import "testing"

func TestCUDAVersionForDriver(t *testing.T) {
	for _, tc := range []struct{ driver, want string }{
		{"580.95.05", "13.0"}, {"580.65.06", "13.0"}, {"575.57.08", "12.9"}, {"570.172.08", "12.8"},
		{"550.54.15", "12.4"}, {"535.104.05", "12.2"}, {"470.256.02", "11.4"}, {"590.44.01", "13.1"},
		{"400.1", ""}, {"620.1.1", ""}, {"abc", ""}, {"", ""},
	} {
		if got := CUDAVersionForDriver(tc.driver); got != tc.want {
			t.Errorf("CUDAVersionForDriver(%q) = %q, want %q", tc.driver, got, tc.want)
		}
	}
}

func TestArchAndBrandForModel(t *testing.T) {
	for _, tc := range []struct{ model, arch, brand string }{
		{"NVIDIA A100-SXM4-80GB", "8.0", "nvidia"},
		{"NVIDIA A10", "8.6", "nvidia"},
		{"NVIDIA A10G", "8.6", "nvidia"},
		{"NVIDIA H100 80GB HBM3", "9.0", "nvidia"},
		{"NVIDIA H200", "9.0", "nvidia"},
		{"NVIDIA L4", "8.9", "nvidia"},
		{"NVIDIA L40S", "8.9", "nvidia"},
		{"NVIDIA B200", "10.0", "nvidia"},
		{"Tesla T4", "7.5", "tesla"},
		{"Tesla V100-SXM2-16GB", "7.0", "tesla"},
		{"NVIDIA GeForce RTX 4090", "8.9", "geforcertx"},
		{"NVIDIA GeForce RTX 3080", "8.6", "geforcertx"},
		{"NVIDIA GeForce RTX 5090", "12.0", "geforcertx"},
		{"NVIDIA GeForce GTX 1080 Ti", "6.1", "geforce"},
		{"Quadro RTX 8000", "7.5", "quadrortx"},
		{"NVIDIA RTX A6000", "8.6", "nvidiartx"},
		{"NVIDIA RTX 6000 Ada Generation", "8.9", "nvidiartx"},
		{"NVIDIA TITAN RTX", "7.5", "titanrtx"},
		{"Some Future GPU", "", "nvidia"},
		{"", "", ""},
	} {
		if got := ArchForModel(tc.model); got != tc.arch {
			t.Errorf("ArchForModel(%q) = %q, want %q", tc.model, got, tc.arch)
		}
		if got := BrandForModel(tc.model); got != tc.brand {
			t.Errorf("BrandForModel(%q) = %q, want %q", tc.model, got, tc.brand)
		}
	}
}
