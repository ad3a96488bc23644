package deviceplugin

import (
	"reflect"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/gpu"
)

func migInventory() *gpu.Inventory {
	return &gpu.Inventory{GPUs: []gpu.GPU{
		{Index: 0, UUID: "GPU-a", MIGEnabled: true, MIGDevices: []gpu.MIG{
			{Index: 0, UUID: "MIG-a0", Profile: "1g.5gb"}, {Index: 1, UUID: "MIG-a1", Profile: "1g.5gb"},
		}},
		{Index: 1, UUID: "GPU-b", MIGEnabled: true, MIGDevices: []gpu.MIG{
			{Index: 0, UUID: "MIG-b0", Profile: "3g.20gb"},
		}},
		{Index: 2, UUID: "GPU-c"},
	}}
}

// ids lists each resource's device IDs and CDI names.
func ids(res []Resource) map[string][]string {
	out := map[string][]string{}
	for _, r := range res {
		for _, d := range r.Devices {
			out[r.Name] = append(out[r.Name], d.ID+">"+d.CDIName)
		}
	}
	return out
}

func TestBuild(t *testing.T) {
	uniform := &gpu.Inventory{GPUs: []gpu.GPU{
		{Index: 0, UUID: "GPU-a", MIGEnabled: true, MIGDevices: []gpu.MIG{{Index: 0, UUID: "MIG-a0", Profile: "1g.5gb"}}},
		{Index: 1, UUID: "GPU-b", MIGEnabled: true, MIGDevices: []gpu.MIG{{Index: 0, Profile: "1g.5gb"}}},
	}}
	tests := []struct {
		name    string
		inv     *gpu.Inventory
		opts    BuildOptions
		want    map[string][]string
		wantErr string
	}{
		{name: "none: whole GPUs, MIG or not", inv: migInventory(), opts: BuildOptions{ResourceName: "nvidia.com/gpu", MIGStrategy: MIGNone},
			want: map[string][]string{"nvidia.com/gpu": {"GPU-a>GPU-a", "GPU-b>GPU-b", "GPU-c>GPU-c"}}},
		{name: "mixed: one resource per profile", inv: migInventory(), opts: BuildOptions{ResourceName: "nvidia.com/gpu", MIGStrategy: MIGMixed},
			want: map[string][]string{
				"nvidia.com/gpu":         {"GPU-c>GPU-c"},
				"nvidia.com/mig-1g.5gb":  {"MIG-a0>0:0", "MIG-a1>0:1"},
				"nvidia.com/mig-3g.20gb": {"MIG-b0>1:0"},
			}},
		{name: "single: MIG devices under the resource name; no UUID on procfs", inv: uniform, opts: BuildOptions{ResourceName: "nvidia.com/gpu", MIGStrategy: MIGSingle},
			want: map[string][]string{"nvidia.com/gpu": {"MIG-a0>0:0", "MIG-1-0>1:0"}}},
		{name: "single refuses two profiles", inv: migInventory(), opts: BuildOptions{ResourceName: "nvidia.com/gpu", MIGStrategy: MIGSingle},
			wantErr: "all or none must be"},
		{name: "time-slicing: distinct IDs, one CDI name", inv: &gpu.Inventory{GPUs: []gpu.GPU{{Index: 0, UUID: "GPU-a"}}},
			opts: BuildOptions{ResourceName: "nvidia.com/gpu", Replicas: 3},
			want: map[string][]string{"nvidia.com/gpu": {"GPU-a::0>GPU-a", "GPU-a::1>GPU-a", "GPU-a::2>GPU-a"}}},
		{name: "bad resource name", inv: migInventory(), opts: BuildOptions{ResourceName: "gpu"}, wantErr: "want <domain>/<name>"},
		{name: "kubernetes.io domain", inv: migInventory(), opts: BuildOptions{ResourceName: "kubernetes.io/gpu"}, wantErr: "not under kubernetes.io"},
		{name: "too long for a CDI annotation key", inv: migInventory(), opts: BuildOptions{ResourceName: "example.com/" + strings.Repeat("g", 60)}, wantErr: "too long"},
		{name: "unknown strategy", inv: migInventory(), opts: BuildOptions{ResourceName: "nvidia.com/gpu", MIGStrategy: "all"}, wantErr: "unknown mig strategy"},
		{name: "mixed needs profiles", inv: &gpu.Inventory{GPUs: []gpu.GPU{{Index: 0, MIGEnabled: true, MIGDevices: []gpu.MIG{{Index: 0}}}}}, opts: BuildOptions{ResourceName: "nvidia.com/gpu", MIGStrategy: MIGMixed}, wantErr: "no known profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Build(tt.inv, tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(res); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestAllocateStrategies(t *testing.T) {
	res, err := Build(&gpu.Inventory{GPUs: []gpu.GPU{{Index: 0, UUID: "GPU-a"}, {Index: 1, UUID: "GPU-b"}}},
		BuildOptions{ResourceName: "nvidia.com/gpu", Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	devs := map[string]Device{}
	for _, d := range res[0].Devices {
		devs[d.ID] = d
	}
	// Two shares of GPU-a and one of GPU-b: each GPU named once.
	req := []string{"GPU-a::0", "GPU-a::1", "GPU-b::1"}
	tests := []struct {
		strategy string
		check    func(t *testing.T, annotations, envs map[string]string, cdi []string, mounts []string)
	}{
		{ListCDIAnnotations, func(t *testing.T, a, e map[string]string, c, m []string) {
			want := map[string]string{"cdi.k8s.io/nvbind_nvidia.com_gpu": "nvidia.com/gpu=GPU-a,nvidia.com/gpu=GPU-b"}
			if !reflect.DeepEqual(a, want) || len(e)+len(c)+len(m) != 0 {
				t.Errorf("annotations %v envs %v cdi %v mounts %v", a, e, c, m)
			}
		}},
		{ListCDICRI, func(t *testing.T, a, e map[string]string, c, m []string) {
			if !reflect.DeepEqual(c, []string{"nvidia.com/gpu=GPU-a", "nvidia.com/gpu=GPU-b"}) || len(a)+len(e)+len(m) != 0 {
				t.Errorf("annotations %v envs %v cdi %v mounts %v", a, e, c, m)
			}
		}},
		{ListEnvvar, func(t *testing.T, a, e map[string]string, c, m []string) {
			if !reflect.DeepEqual(e, map[string]string{"NVIDIA_VISIBLE_DEVICES": "GPU-a,GPU-b"}) || len(a)+len(c)+len(m) != 0 {
				t.Errorf("annotations %v envs %v cdi %v mounts %v", a, e, c, m)
			}
		}},
		{ListVolumeMounts, func(t *testing.T, a, e map[string]string, c, m []string) {
			want := []string{"/dev/null:/var/run/nvidia-container-devices/GPU-a", "/dev/null:/var/run/nvidia-container-devices/GPU-b"}
			if !reflect.DeepEqual(m, want) || e["NVIDIA_VISIBLE_DEVICES"] != "/var/run/nvidia-container-devices" || len(a)+len(c) != 0 {
				t.Errorf("annotations %v envs %v cdi %v mounts %v", a, e, c, m)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.strategy, func(t *testing.T) {
			r, err := allocate(devs, "nvidia.com/gpu", tt.strategy, DefaultCDIKind, req)
			if err != nil {
				t.Fatal(err)
			}
			var cdi, mounts []string
			for _, d := range r.CdiDevices {
				cdi = append(cdi, d.Name)
			}
			for _, m := range r.Mounts {
				mounts = append(mounts, m.HostPath+":"+m.ContainerPath)
			}
			tt.check(t, r.Annotations, r.Envs, cdi, mounts)
		})
	}
	if _, err := allocate(devs, "nvidia.com/gpu", "cdi-annotations,cdi-cri", DefaultCDIKind, req); err == nil {
		t.Error("two strategies at once accepted")
	}
	if _, err := allocate(devs, "nvidia.com/gpu", ListCDICRI, DefaultCDIKind, nil); err == nil {
		t.Error("empty request accepted")
	}
}

func TestPreferred(t *testing.T) {
	topo := NUMATopology{0: 0, 1: 1, 2: 0, 3: 1}
	mk := func(replicas int) map[string]Device {
		inv := &gpu.Inventory{}
		for i := 0; i < 4; i++ {
			inv.GPUs = append(inv.GPUs, gpu.GPU{Index: i, UUID: "G" + string(rune('0'+i))})
		}
		res, _ := Build(inv, BuildOptions{ResourceName: "nvidia.com/gpu", Replicas: replicas})
		m := map[string]Device{}
		for _, d := range res[0].Devices {
			m[d.ID] = d
		}
		return m
	}
	all := []string{"G0", "G1", "G2", "G3"}
	tests := []struct {
		name        string
		devs        map[string]Device
		avail, must []string
		size        int
		want        []string
	}{
		{"same NUMA node", mk(1), all, nil, 2, []string{"G0", "G2"}},
		{"must include", mk(1), all, []string{"G3"}, 2, []string{"G3", "G1"}},
		{"too many", mk(1), all, nil, 5, nil},
		{"shares spread over GPUs", mk(2), []string{"G0::0", "G0::1", "G2::0", "G2::1"}, nil, 2, []string{"G0::0", "G2::0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := preferred(tt.devs, tt.avail, tt.must, tt.size, topo)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	// Greedy above maxExhaustive candidates still returns size devices.
	if got := preferred(mk(8), idsOf(mk(8)), nil, 6, topo); len(got) != 6 {
		t.Errorf("greedy: %v", got)
	}
}

func idsOf(m map[string]Device) []string {
	var out []string
	for id := range m {
		out = append(out, id)
	}
	return out
}

func TestXIDs(t *testing.T) {
	got, err := ParseXIDs(" 13, 31,79 ,")
	if err != nil || !reflect.DeepEqual(got, []uint64{13, 31, 79}) {
		t.Fatalf("ParseXIDs = %v, %v", got, err)
	}
	if _, err := ParseXIDs("13,x"); err == nil {
		t.Error("bad Xid accepted")
	}
	for xid, want := range map[uint64]bool{13: false, 31: false, 43: false, 45: false, 68: false, 109: false, 48: true, 79: true, 94: true} {
		if CriticalXID(xid, DefaultIgnoredXIDs) != want {
			t.Errorf("Xid %d critical = %v, want %v", xid, !want, want)
		}
	}
}
