package request

import (
	"reflect"
	"strings"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

const kind = "nvidia.com/gpu"

func TestParse(t *testing.T) {
	tests := []struct {
		name        string
		env         []string
		annotations map[string]string
		want        *Request
	}{
		{"nothing", []string{"PATH=/bin"}, nil, nil},
		{"void", []string{"NVIDIA_VISIBLE_DEVICES=void"}, nil, nil},
		{"empty", []string{"NVIDIA_VISIBLE_DEVICES="}, nil, nil},
		{"all", []string{"NVIDIA_VISIBLE_DEVICES=all"}, nil,
			&Request{Source: SourceEnv, Devices: []string{kind + "=all"}, Capabilities: []string{"compute", "utility"}, Requirements: []string{}}},
		{"none", []string{"NVIDIA_VISIBLE_DEVICES=none"}, nil,
			&Request{Source: SourceEnv, Devices: []string{kind + "=driver"}, Capabilities: []string{"compute", "utility"}, Requirements: []string{}}},
		{"indices uuid mig", []string{"NVIDIA_VISIBLE_DEVICES=0, 2,GPU-6f8b2e4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b,1:3,MIG-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab,2"}, nil,
			&Request{Source: SourceEnv, Devices: []string{kind + "=0", kind + "=2", kind + "=GPU-6f8b2e4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b", kind + "=1:3", kind + "=MIG-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab"},
				Capabilities: []string{"compute", "utility"}, Requirements: []string{}}},
		{"last env wins", []string{"NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_VISIBLE_DEVICES=1"}, nil,
			&Request{Source: SourceEnv, Devices: []string{kind + "=1"}, Capabilities: []string{"compute", "utility"}, Requirements: []string{}}},
		{"capabilities all", []string{"NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=all"}, nil,
			&Request{Source: SourceEnv, Devices: []string{kind + "=0"}, Capabilities: Capabilities, Requirements: []string{}}},
		{"capabilities list", []string{"NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=graphics, utility,graphics"}, nil,
			&Request{Source: SourceEnv, Devices: []string{kind + "=0"}, Capabilities: []string{"graphics", "utility"}, Requirements: []string{}}},
		{"cdi annotations", nil, map[string]string{"cdi.k8s.io/b": "nvidia.com/gpu=1,vendor.com/nic=eth0", "cdi.k8s.io/a": "0", "other": "x"},
			&Request{Source: SourceAnnotation, Devices: []string{kind + "=0", kind + "=1", "vendor.com/nic=eth0"}, Capabilities: []string{"compute", "utility"}, Requirements: []string{}}},
		{"annotation wins over env", []string{"NVIDIA_VISIBLE_DEVICES=all"}, map[string]string{"cdi.k8s.io/x": "nvidia.com/gpu=1"},
			&Request{Source: SourceAnnotation, Ignored: []string{kind + "=all"}, Devices: []string{kind + "=1"}, Capabilities: []string{"compute", "utility"}, Requirements: []string{}}},
		{"annotation wins over a bad env value", []string{"NVIDIA_VISIBLE_DEVICES=/dev/sda"}, map[string]string{"cdi.k8s.io/x": "nvidia.com/gpu=1"},
			&Request{Source: SourceAnnotation, Ignored: []string{"/dev/sda"}, Devices: []string{kind + "=1"}, Capabilities: []string{"compute", "utility"}, Requirements: []string{}}},
		{"volume-mount list root in env, no mounts", []string{"NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices"}, nil, nil},
		{"requirements", []string{"NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=12.0", "NVIDIA_REQUIRE_ARCH=arch>=8.0"}, nil,
			&Request{Source: SourceEnv, Devices: []string{kind + "=0"}, Capabilities: []string{"compute", "utility"},
				Requirements: []string{"NVIDIA_REQUIRE_ARCH=arch>=8.0", "NVIDIA_REQUIRE_CUDA=cuda>=12.0"}}},
		{"requirements disabled", []string{"NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99", "NVIDIA_DISABLE_REQUIRE=true"}, nil,
			&Request{Source: SourceEnv, Devices: []string{kind + "=0"}, Capabilities: []string{"compute", "utility"}}},
		{"requirements disabled as ParseBool reads it", []string{"NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99", "NVIDIA_DISABLE_REQUIRE=T"}, nil,
			&Request{Source: SourceEnv, Devices: []string{kind + "=0"}, Capabilities: []string{"compute", "utility"}}},
		{"disable-require not a boolean: checks stay on", []string{"NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99", "NVIDIA_DISABLE_REQUIRE=f"}, nil,
			&Request{Source: SourceEnv, Devices: []string{kind + "=0"}, Capabilities: []string{"compute", "utility"}, Requirements: []string{"NVIDIA_REQUIRE_CUDA=cuda>=99"}}},
		{"disable-require garbage: checks stay on", []string{"NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99", "NVIDIA_DISABLE_REQUIRE=yes please"}, nil,
			&Request{Source: SourceEnv, Devices: []string{kind + "=0"}, Capabilities: []string{"compute", "utility"}, Requirements: []string{"NVIDIA_REQUIRE_CUDA=cuda>=99"}}},
		{"CUDA_VERSION without NVIDIA_REQUIRE_CUDA", []string{"NVIDIA_VISIBLE_DEVICES=0", "CUDA_VERSION=12.4.1"}, nil,
			&Request{Source: SourceEnv, Devices: []string{kind + "=0"}, Capabilities: []string{"compute", "utility"}, Requirements: []string{"CUDA_VERSION=12.4.1"}}},
		{"NVIDIA_REQUIRE_CUDA wins over CUDA_VERSION", []string{"NVIDIA_VISIBLE_DEVICES=0", "CUDA_VERSION=12.4.1", "NVIDIA_REQUIRE_CUDA=cuda>=11.0"}, nil,
			&Request{Source: SourceEnv, Devices: []string{kind + "=0"}, Capabilities: []string{"compute", "utility"}, Requirements: []string{"NVIDIA_REQUIRE_CUDA=cuda>=11.0"}}},
		{"profile only", []string{"NVBIND_PROFILE=ml"}, nil,
			&Request{Profile: "ml", Capabilities: []string{"compute", "utility"}, Requirements: []string{}}},
		{"profile annotation wins and params", []string{"NVBIND_PROFILE=ml", "NVIDIA_VISIBLE_DEVICES=0"},
			map[string]string{"nvbind.io/profile": "ollama", "nvbind.io/profile.model": "llama3.1:70b"},
			&Request{Source: SourceEnv, Devices: []string{kind + "=0"}, Profile: "ollama", ProfileParams: map[string]string{"model": "llama3.1:70b"},
				Capabilities: []string{"compute", "utility"}, Requirements: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.env, tt.annotations, kind)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name        string
		env         []string
		annotations map[string]string
		want        string
	}{
		{"path", []string{"NVIDIA_VISIBLE_DEVICES=../../etc/passwd"}, nil, `invalid device "../../etc/passwd"`},
		{"absolute path", []string{"NVIDIA_VISIBLE_DEVICES=/dev/sda"}, nil, `invalid device "/dev/sda"`},
		{"huge index", []string{"NVIDIA_VISIBLE_DEVICES=123456789"}, nil, "index out of range"},
		{"empty item", []string{"NVIDIA_VISIBLE_DEVICES=0,,1"}, nil, "empty entry"},
		{"oversize", []string{"NVIDIA_VISIBLE_DEVICES=" + strings.Repeat("0,", 3000)}, nil, "more than 4096"},
		{"bad uuid", []string{"NVIDIA_VISIBLE_DEVICES=GPU-zz$"}, nil, "hex digits"},
		{"shell", []string{"NVIDIA_VISIBLE_DEVICES=0;rm -rf /"}, nil, `invalid device "0;rm -rf /"`},
		{"bad capability", []string{"NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute,root"}, nil, `unknown capability "root"`},
		{"bad cdi name", nil, map[string]string{"cdi.k8s.io/x": "nvidia.com/gpu=../0"}, `invalid CDI device "nvidia.com/gpu=../0"`},
		{"empty cdi name", nil, map[string]string{"cdi.k8s.io/x": "nvidia.com/gpu="}, "invalid CDI device"},
		{"path-like bare name", nil, map[string]string{"cdi.k8s.io/x": "../../x"}, "invalid name"},
		{"bad profile", nil, map[string]string{"nvbind.io/profile": "../ml"}, "invalid name"},
		{"bad profile env", []string{"NVBIND_PROFILE=a b"}, nil, "invalid name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.env, tt.annotations, kind)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %+v, err %v; want error containing %q", got, err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") || len(err.Error()) > 300 {
				t.Errorf("error is not one short line: %q", err)
			}
		})
	}
}

func TestCapabilityDevices(t *testing.T) {
	r := &Request{Capabilities: []string{"compute", "display", "graphics", "utility"}}
	want := []string{kind + "=capability-display", kind + "=capability-graphics"}
	if got := r.CapabilityDevices(kind); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v want %v", got, want)
	}
}

func TestParseWithSources(t *testing.T) {
	null := func(dest string) rspec.Mount {
		return rspec.Mount{Source: "/dev/null", Destination: dest, Type: "bind", Options: []string{"bind", "ro"}}
	}
	caps := []string{"compute", "utility"}
	tests := []struct {
		name string
		in   Input
		opts Options
		want *Request
	}{
		{"volume mounts win over env", Input{
			Env:    []string{"NVIDIA_VISIBLE_DEVICES=all"},
			Mounts: []rspec.Mount{null(VolumeMountRoot + "/1"), null(VolumeMountRoot + "/cdi/vendor.com/fpga=a0"), {Source: "/etc", Destination: VolumeMountRoot + "/2"}},
		}, Options{DefaultKind: kind},
			&Request{Source: SourceVolumeMount, Devices: []string{kind + "=1", "vendor.com/fpga=a0"}, Ignored: []string{kind + "=all"}, Capabilities: caps, Requirements: []string{}}},
		{"annotations win over volume mounts", Input{
			Annotations: map[string]string{"cdi.k8s.io/dp": "nvidia.com/gpu=0"},
			Mounts:      []rspec.Mount{null(VolumeMountRoot + "/1")},
		}, Options{DefaultKind: kind},
			&Request{Source: SourceAnnotation, Devices: []string{kind + "=0"}, Capabilities: caps, Requirements: []string{}}},
		{"extra annotation prefix", Input{
			Env:         []string{"NVIDIA_VISIBLE_DEVICES=all"},
			Annotations: map[string]string{"nvidia.cdi.k8s.io/dp": "nvidia.com/gpu=2"},
		}, Options{DefaultKind: kind, AnnotationPrefixes: []string{"nvidia.cdi.k8s.io/"}},
			&Request{Source: SourceAnnotation, Devices: []string{kind + "=2"}, Ignored: []string{kind + "=all"}, Capabilities: caps, Requirements: []string{}}},
		{"unknown prefix is not a request", Input{
			Annotations: map[string]string{"nvidia.cdi.k8s.io/dp": "nvidia.com/gpu=2"},
		}, Options{DefaultKind: kind}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWith(tt.in, tt.opts)
			if err != nil {
				t.Fatalf("ParseWith: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	_, err := ParseWith(Input{Mounts: []rspec.Mount{null(VolumeMountRoot + "/../../etc")}}, Options{DefaultKind: kind})
	if err != nil {
		t.Errorf("a mount outside the list is not a request: %v", err)
	}
	_, err = ParseWith(Input{Mounts: []rspec.Mount{null(VolumeMountRoot + "/x;y")}}, Options{DefaultKind: kind})
	if err == nil || !strings.Contains(err.Error(), "volume mount") {
		t.Errorf("bad volume-mount id: err %v", err)
	}
}

func TestIsDefaultKind(t *testing.T) {
	for k, want := range map[string]bool{kind: true, "nvidia.com/mig": true, "nvidia.com/mig-1g.10gb": true, "nvidia.com/nic": false, "amd.com/gpu": false, "amd.com/mig": false} {
		if got := IsDefaultKind(k, kind); got != want {
			t.Errorf("IsDefaultKind(%s) = %v", k, got)
		}
	}
}
