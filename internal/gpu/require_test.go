package gpu

import (
	"strings"
	"testing"
)

func TestCheckRequirements(t *testing.T) {
	host := HostFacts{DriverVersion: "580.95.05", CUDAVersion: "13.0", Arch: []string{"8.0", "8.0"}, Brand: []string{"nvidia", "nvidia"}}
	for _, tc := range []struct {
		name string
		env  []string
		want string // "" = met; else a substring of the error
	}{
		{"none", nil, ""},
		{"cuda met", []string{"NVIDIA_REQUIRE_CUDA=cuda>=12.4"}, ""},
		{"cuda equal", []string{"NVIDIA_REQUIRE_CUDA=cuda>=13.0"}, ""},
		{"cuda unmet", []string{"NVIDIA_REQUIRE_CUDA=cuda>=13.1"}, `unsatisfied requirement NVIDIA_REQUIRE_CUDA="cuda>=13.1": host has CUDA 13.0, driver 580.95.05`},
		{"or: second alternative", []string{"NVIDIA_REQUIRE_CUDA=cuda>=14.0 brand=nvidia,driver>=580,driver<581"}, ""},
		{"and: one term fails", []string{"NVIDIA_REQUIRE_CUDA=cuda>=12.0,driver<570"}, "unsatisfied requirement NVIDIA_REQUIRE_CUDA"},
		{"real cuda image", []string{"NVIDIA_REQUIRE_CUDA=cuda>=12.4 brand=tesla,driver>=470,driver<471 brand=unknown,driver>=470,driver<471"}, ""},
		{"separate vars AND", []string{"NVIDIA_REQUIRE_CUDA=cuda>=12.0", "NVIDIA_REQUIRE_DRIVER=driver>=590"}, `NVIDIA_REQUIRE_DRIVER="driver>=590": host has driver 580.95.05`},
		{"arch met", []string{"NVIDIA_REQUIRE_ARCH=arch>=7.0"}, ""},
		{"arch unmet", []string{"NVIDIA_REQUIRE_ARCH=arch>=9.0"}, "host has arch 8.0,8.0"},
		{"arch exact", []string{"NVIDIA_REQUIRE_ARCH=arch=8.0"}, ""},
		{"brand met", []string{"NVIDIA_REQUIRE_BRAND=brand=nvidia"}, ""},
		{"brand unmet", []string{"NVIDIA_REQUIRE_BRAND=brand=geforce"}, "host has brand nvidia,nvidia"},
		{"brand not", []string{"NVIDIA_REQUIRE_BRAND=brand!=geforce"}, ""},
		{"disabled", []string{"NVIDIA_REQUIRE_CUDA=cuda>=99.0", "NVIDIA_DISABLE_REQUIRE=true"}, ""},
		{"disable=false keeps checks", []string{"NVIDIA_REQUIRE_CUDA=cuda>=99.0", "NVIDIA_DISABLE_REQUIRE=false"}, "unsatisfied"},
		{"legacy CUDA_VERSION", []string{"CUDA_VERSION=13.2.1"}, `unsatisfied requirement CUDA_VERSION="cuda>=13.2"`},
		{"legacy CUDA_VERSION met", []string{"CUDA_VERSION=12.8.0"}, ""},
		{"CUDA_VERSION ignored with REQUIRE", []string{"CUDA_VERSION=99.0", "NVIDIA_REQUIRE_CUDA=cuda>=12.0"}, ""},
		{"last entry wins", []string{"NVIDIA_REQUIRE_CUDA=cuda>=99.0", "NVIDIA_REQUIRE_CUDA=cuda>=12.0"}, ""},
		{"empty value", []string{"NVIDIA_REQUIRE_CUDA="}, ""},
		{"bad key", []string{"NVIDIA_REQUIRE_FOO=memory>=40"}, `NVIDIA_REQUIRE_FOO="memory>=40": invalid constraint "memory>=40"`},
		{"bad version", []string{"NVIDIA_REQUIRE_CUDA=cuda>=twelve"}, `"twelve" is not a version`},
		{"brand with order", []string{"NVIDIA_REQUIRE_BRAND=brand>=tesla"}, "only = and != compare brands"},
		{"no operator", []string{"NVIDIA_REQUIRE_CUDA=cuda12"}, "invalid constraint"},
	} {
		err := CheckRequirements(tc.env, host)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: met, want an error containing %q", tc.name, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: error %q does not contain %q", tc.name, err, tc.want)
		}
	}
}

func TestUnknownFactsAreNotChecked(t *testing.T) {
	host := HostFacts{DriverVersion: "620.1.1"} // a branch newer than the table: CUDA unknown
	for _, env := range [][]string{
		{"NVIDIA_REQUIRE_CUDA=cuda>=13.0"},
		{"NVIDIA_REQUIRE_ARCH=arch>=9.0"},
		{"NVIDIA_REQUIRE_BRAND=brand=tesla"},
	} {
		if err := CheckRequirements(env, host); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
	if err := CheckRequirements([]string{"NVIDIA_REQUIRE_DRIVER=driver>=700"}, host); err == nil {
		t.Error("driver is always known and must be checked")
	}
}

func TestHasRequirements(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want bool
	}{
		{nil, false},
		{[]string{"PATH=/bin"}, false},
		{[]string{"NVIDIA_REQUIRE_CUDA=cuda>=12"}, true},
		{[]string{"CUDA_VERSION=12.4.1"}, true},
		{[]string{"NVIDIA_REQUIRE_CUDA=cuda>=12", "NVIDIA_DISABLE_REQUIRE=1"}, false},
	} {
		if got := HasRequirements(tc.env); got != tc.want {
			t.Errorf("HasRequirements(%v) = %v, want %v", tc.env, got, tc.want)
		}
	}
}
