package request

import (
	"slices"
	"strings"
	"testing"

	"tags.cncf.io/container-device-interface/pkg/parser"
)

// FuzzParse: NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES and the
// CDI annotations come from the image or the user. Parse must never panic;
// what it accepts must be well-formed; what it rejects gets a short message.
func FuzzParse(f *testing.F) {
	for _, seed := range []struct{ env, key, value string }{
		{"NVIDIA_VISIBLE_DEVICES=0,1\nNVIDIA_DRIVER_CAPABILITIES=compute,utility", "", ""},
		{"NVIDIA_VISIBLE_DEVICES=all\nNVIDIA_DRIVER_CAPABILITIES=all", "", ""},
		{"NVIDIA_VISIBLE_DEVICES=none", "", ""},
		{"NVIDIA_VISIBLE_DEVICES=GPU-7335478d-5ced-21eb-6b5e-07276d27995b,MIG-0f4c2d1e-aaaa-bbbb-cccc-000000000001,0:1", "", ""},
		{"NVIDIA_VISIBLE_DEVICES=../../dev/sda", "", ""},
		{"", "cdi.k8s.io/x", "nvidia.com/gpu=0,nvidia.com/gpu=all"},
		{"", "cdi.k8s.io/x", "evil.example.com/disk=../../sda"},
		{"NVBIND_PROFILE=ml", "nvbind.io/profile.shm", "8g"},
		{"NVIDIA_VISIBLE_DEVICES=0\nNVIDIA_REQUIRE_CUDA=cuda>=12.0 brand=tesla\nNVIDIA_DISABLE_REQUIRE=false", "", ""},
	} {
		f.Add(seed.env, seed.key, seed.value)
	}
	f.Fuzz(func(t *testing.T, env, key, value string) {
		var annotations map[string]string
		if key != "" {
			annotations = map[string]string{key: value}
		}
		r, err := Parse(strings.Split(env, "\n"), annotations, "nvidia.com/gpu")
		if err != nil {
			// Bounded whatever the input: one log line, not an echo of
			// megabytes (bytes outside ASCII are quoted as \xNN).
			if msg := err.Error(); len(msg) > 4096 || strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("error message is not one bounded line (%d bytes): %.300q", len(msg), msg)
			}
			return
		}
		if r == nil {
			return
		}
		for _, d := range r.Devices {
			if _, _, _, err := parser.ParseQualifiedName(d); err != nil {
				t.Fatalf("accepted device %q is not a qualified CDI name: %v", d, err)
			}
		}
		if len(r.Devices) != len(slices.Compact(slices.Sorted(slices.Values(r.Devices)))) {
			t.Fatalf("duplicate devices %v", r.Devices)
		}
		// Known capabilities, each once, in the stable order of Capabilities.
		next := 0
		for _, c := range r.Capabilities {
			i := slices.Index(Capabilities[next:], c)
			if i < 0 {
				t.Fatalf("capabilities %v: %q unknown, repeated or out of order", r.Capabilities, c)
			}
			next += i + 1
		}
	})
}
