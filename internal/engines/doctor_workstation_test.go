package engines

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

func TestDoctorWorkstation(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("simulated driver roots need root (mknod)")
	}
	type want struct {
		check  string
		status Status
		text   string
	}
	tests := []struct {
		name string
		opts simroot.Options
		want []want
	}{
		{"wsl2", simroot.Options{WSL: true}, []want{
			{"driver", Pass, "WSL2 (kernel " + simroot.WSLKernelRelease},
			{"device-nodes", Pass, "/dev/dxg present (10:124)"},
			{"nvml", Skip, "fit check is skipped"},
			{"persistence", Skip, "WSL2"},
		}},
		{"open", simroot.Options{GPUs: 1}, []want{
			{"driver-flavour", Pass, "NVIDIA open kernel modules"},
			{"gpu-binding", Pass, "1 NVIDIA GPU(s) bound to the nvidia driver"},
			{"gsp-firmware", Pass, "gsp_ga10x.bin"},
			{"hybrid-graphics", Skip, ""},
		}},
		{"open without firmware", simroot.Options{GPUs: 1, NoFirmware: true}, []want{
			{"gsp-firmware", Fail, "need GSP firmware"},
		}},
		{"proprietary", simroot.Options{GPUs: 1, Kernel: simroot.KernelProprietary}, []want{
			{"driver-flavour", Pass, "proprietary"},
			{"gsp-firmware", Skip, ""},
		}},
		{"nouveau", simroot.Options{GPUs: 1, Kernel: simroot.KernelNouveau}, []want{
			{"driver", Fail, ""},
			{"driver-flavour", Fail, "nouveau drives the NVIDIA GPUs"},
			{"gpu-binding", Fail, "bound to nouveau"},
		}},
		{"vfio", simroot.Options{GPUs: 1, VFIOGPUs: 1}, []want{
			{"gpu-binding", Warn, "is bound to vfio-pci"},
		}},
		{"hybrid", simroot.Options{GPUs: 1, Hybrid: true}, []want{
			{"hybrid-graphics", Pass, "prime=true"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := doctorFixture(t)
			r, err := simroot.Build(filepath.Join(t.TempDir(), "driver"), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			opts.DriverRoot = r.Dir
			rep := Doctor(opts)
			for _, w := range tt.want {
				c := checkOf(t, rep, w.check)
				if c.Status != w.status || !strings.Contains(c.Message, w.text) {
					t.Errorf("%s: %+v, want %s with %q", w.check, c, w.status, w.text)
				}
				if (c.Status == Fail || c.Status == Warn) && c.Fix == "" {
					t.Errorf("%s: no fix", w.check)
				}
			}
		})
	}
}
