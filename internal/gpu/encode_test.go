package gpu

import (
	"reflect"
	"testing"

	"tags.cncf.io/container-device-interface/pkg/cdi"
	specs "tags.cncf.io/container-device-interface/specs-go"
)

func TestPlainSafe(t *testing.T) {
	for _, tc := range []struct {
		s     string
		plain bool
	}{
		{"/dev/nvidia0", true}, {"nvbind-hook", true}, {"--link", true}, {"GPU-7335478d-5ced", true},
		{"NVBIND_DRIVER_VERSION=580.95.05", true}, {"libcuda.so.1::/usr/lib/libcuda.so", true},
		{"../card1::/dev/dri/by-path/pci-0000:07:00.0-card", true}, {"capability-graphics", true},
		{"0", false}, {"755", false}, {"1:0", false}, {"0:1", false}, {"0755", false}, {"1.0", false},
		{"true", false}, {"yes", false}, {"No", false}, {"on", false}, {"null", false}, {"~", false},
		{"", false}, {"a b", false}, {"a: b", false}, {"x #y", false}, {"key:", false}, {"-", false},
		{"- x", false}, {"[a]", false}, {"{a}", false}, {"a,b", false}, {"*ref", false}, {"&a", false},
		{"!tag", false}, {"'q'", false}, {`"q"`, false}, {".5", false}, {".inf", false}, {"@x", false},
		{"%x", false}, {"|", false}, {">", false}, {"é", false}, {"a\nb", false},
	} {
		if got := plainSafe(tc.s); got != tc.plain {
			t.Errorf("plainSafe(%q) = %v, want %v", tc.s, got, tc.plain)
		}
	}
}

// TestEncodeRoundTrip checks that what the hand-written YAML emitter and the
// JSON encoder write decodes, with the CDI library, to the same spec, for
// strings a YAML reader could misread.
func TestEncodeRoundTrip(t *testing.T) {
	odd := []string{"0", "1:0", "0755", "yes", "a b", "x: y", "#c", "[a]", "é/ü", "tab\there", "q\"uote", `back\slash`, "new\nline", "-", "*", "&a", "!t", "null", "~"}
	spec := &specs.Spec{Version: "0.5.0", Kind: Kind}
	for i, s := range odd {
		spec.Devices = append(spec.Devices, specs.Device{
			Name: "d" + string(rune('a'+i)),
			ContainerEdits: specs.ContainerEdits{
				Env:         []string{"K=" + s},
				DeviceNodes: []*specs.DeviceNode{{Path: "/dev/" + s, HostPath: "/h/" + s}},
				Hooks:       []*specs.Hook{{HookName: "createContainer", Path: "/bin/" + s, Args: []string{s, "--x", s}}},
				Mounts:      []*specs.Mount{{HostPath: "/h/" + s, ContainerPath: "/c/" + s, Options: []string{"ro", s}}},
			},
		})
	}
	spec.ContainerEdits.Env = []string{DriverVersionEnv + "=580.95.05"}
	for _, format := range []string{"yaml", "json"} {
		data, err := Encode(spec, format, "nvbind test")
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		got, err := cdi.ParseSpec(data)
		if err != nil {
			t.Fatalf("%s: the CDI library cannot parse it: %v\n%s", format, err, data)
		}
		if !reflect.DeepEqual(got, spec) {
			t.Errorf("%s: round trip differs:\n%s", format, data)
		}
		if err := Validate(data); err != nil {
			t.Errorf("%s: %v", format, err)
		}
	}
}

func TestValidateSpecRejects(t *testing.T) {
	node := specs.ContainerEdits{DeviceNodes: []*specs.DeviceNode{{Path: "/dev/nvidia0"}}}
	for name, spec := range map[string]*specs.Spec{
		"no devices":      {Version: "0.5.0", Kind: Kind},
		"bad kind":        {Version: "0.5.0", Kind: "nvidia", Devices: []specs.Device{{Name: "a", ContainerEdits: node}}},
		"version too low": {Version: "0.3.0", Kind: Kind, Devices: []specs.Device{{Name: "0", ContainerEdits: node}}},
		"empty device":    {Version: "0.5.0", Kind: Kind, Devices: []specs.Device{{Name: "a"}}},
		"duplicate":       {Version: "0.5.0", Kind: Kind, Devices: []specs.Device{{Name: "a", ContainerEdits: node}, {Name: "a", ContainerEdits: node}}},
		"bad name":        {Version: "0.5.0", Kind: Kind, Devices: []specs.Device{{Name: "a/b", ContainerEdits: node}}},
		"bad hook":        {Version: "0.5.0", Kind: Kind, Devices: []specs.Device{{Name: "a", ContainerEdits: specs.ContainerEdits{Hooks: []*specs.Hook{{HookName: "never", Path: "/x"}}}}}},
		"bad env":         {Version: "0.5.0", Kind: Kind, Devices: []specs.Device{{Name: "a", ContainerEdits: specs.ContainerEdits{Env: []string{"NOEQUALS"}}}}},
	} {
		if err := validateSpec(spec); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
