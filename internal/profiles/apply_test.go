package profiles

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/specconv"
	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nvbind/nvbind/internal/config"
)

func shmOptions(spec *rspec.Spec) (string, int) {
	n := 0
	opts := ""
	for _, m := range spec.Mounts {
		if m.Destination == "/dev/shm" {
			n++
			opts = m.Type + ":" + strings.Join(m.Options, ",")
		}
	}
	return opts, n
}

func TestApplyShmSize(t *testing.T) {
	stubRlimits(t, ^uint64(0), true)
	c := mustCatalog(t, config.Default())
	r, err := c.Resolve("ml", map[string]string{"shm-size": "2GiB"}, Target{GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("tmpfs gets size", func(t *testing.T) {
		spec := specconv.Example()
		if _, err := r.Apply(spec); err != nil {
			t.Fatal(err)
		}
		opts, n := shmOptions(spec)
		if n != 1 || opts != "tmpfs:nosuid,noexec,nodev,mode=1777,size=2147483648" {
			t.Errorf("/dev/shm %d mounts, %s", n, opts)
		}
	})
	t.Run("missing mount is added", func(t *testing.T) {
		spec := specconv.Example()
		var keep []rspec.Mount
		for _, m := range spec.Mounts {
			if m.Destination != "/dev/shm" {
				keep = append(keep, m)
			}
		}
		spec.Mounts = keep
		if _, err := r.Apply(spec); err != nil {
			t.Fatal(err)
		}
		if opts, n := shmOptions(spec); n != 1 || !strings.HasSuffix(opts, "size=2147483648") || !strings.HasPrefix(opts, "tmpfs:") {
			t.Errorf("/dev/shm %d mounts, %s", n, opts)
		}
	})
	t.Run("engine bind mount is left alone", func(t *testing.T) {
		spec := specconv.Example()
		for i := range spec.Mounts {
			if spec.Mounts[i].Destination == "/dev/shm" {
				spec.Mounts[i] = rspec.Mount{Destination: "/dev/shm", Type: "bind", Source: "/var/lib/x/shm", Options: []string{"rbind", "rprivate"}}
			}
		}
		notes, err := r.Apply(spec)
		if err != nil {
			t.Fatal(err)
		}
		if opts, _ := shmOptions(spec); opts != "bind:rbind,rprivate" {
			t.Errorf("bind mount changed: %s", opts)
		}
		if len(notes) != 1 || !strings.Contains(notes[0], "--shm-size=2147483648") {
			t.Errorf("notes %v", notes)
		}
	})
}

// stubRlimits makes the host's hard limits hard (or unlimited) and
// raisable or not, for the length of a test.
func stubRlimits(t *testing.T, hard uint64, canRaise bool) {
	old := hostRlimit
	hostRlimit = func(string) (uint64, bool, error) { return hard, canRaise, nil }
	t.Cleanup(func() { hostRlimit = old })
}

func TestApplyClampsRlimits(t *testing.T) {
	c := mustCatalog(t, config.Default())
	r, err := c.Resolve("ml", nil, Target{GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		hard           uint64
		canRaise       bool
		memlock, stack string
		note           string
	}{
		{"root with CAP_SYS_RESOURCE", 8 << 20, true, "unlimited", "67108864", ""},
		{"host already unlimited", ^uint64(0), false, "unlimited", "67108864", ""},
		{"no CAP_SYS_RESOURCE", 8 << 20, false, "8388608", "8388608", "RLIMIT_MEMLOCK capped at 8388608: asked for unlimited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stubRlimits(t, tt.hard, tt.canRaise)
			spec := specconv.Example()
			notes, err := r.Apply(spec)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, l := range spec.Process.Rlimits {
				if l.Soft != l.Hard {
					t.Errorf("%s soft %d != hard %d", l.Type, l.Soft, l.Hard)
				}
				got[l.Type] = limitString(l.Hard)
			}
			if got["RLIMIT_MEMLOCK"] != tt.memlock || got["RLIMIT_STACK"] != tt.stack {
				t.Errorf("memlock %s stack %s, want %s %s", got["RLIMIT_MEMLOCK"], got["RLIMIT_STACK"], tt.memlock, tt.stack)
			}
			joined := strings.Join(notes, "\n")
			if (tt.note == "") != (joined == "") || !strings.Contains(joined, tt.note) {
				t.Errorf("notes %q, want %q", joined, tt.note)
			}
		})
	}
}

func TestApplyEnvRlimitsDevices(t *testing.T) {
	stubRlimits(t, ^uint64(0), true)
	cache := t.TempDir()
	cfg := userConfig(t, `
[profiles.x]
extends = "ml"
devices = ["/dev/null"]
env = { CUDA_DEVICE_ORDER = "FASTEST_FIRST" }
`)
	c := mustCatalog(t, cfg)
	r, err := c.Resolve("x", map[string]string{"cache-dir": cache}, Target{GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	spec := specconv.Example()
	spec.Process.Env = append(spec.Process.Env, "TF_FORCE_GPU_ALLOW_GROWTH=false")
	spec.Process.Rlimits = append(spec.Process.Rlimits, rspec.POSIXRlimit{Type: "RLIMIT_MEMLOCK", Hard: 65536, Soft: 65536})
	notes, err := r.Apply(spec)
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Join(spec.Process.Env, "\n")
	for _, want := range []string{"CUDA_DEVICE_ORDER=FASTEST_FIRST", "CUDA_MODULE_LOADING=LAZY", "CUDA_CACHE_PATH=/var/cache/nvbind",
		"PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True", "TF_FORCE_GPU_ALLOW_GROWTH=false"} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
	if strings.Contains(env, "TF_FORCE_GPU_ALLOW_GROWTH=true") {
		t.Errorf("container's own TF_FORCE_GPU_ALLOW_GROWTH was overridden")
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "container sets TF_FORCE_GPU_ALLOW_GROWTH=false") {
		t.Errorf("notes %v", notes)
	}
	rl := map[string]string{}
	for _, l := range spec.Process.Rlimits {
		rl[l.Type] = fmt.Sprintf("%d:%d", l.Soft, l.Hard)
	}
	if rl["RLIMIT_MEMLOCK"] != fmt.Sprintf("%d:%d", ^uint64(0), ^uint64(0)) || rl["RLIMIT_STACK"] != "67108864:67108864" {
		t.Errorf("rlimits %v", rl)
	}
	found := false
	for _, d := range spec.Linux.Devices {
		if d.Path == "/dev/null" && d.Type == "c" && d.Major == 1 && d.Minor == 3 {
			found = true
		}
	}
	if !found {
		t.Errorf("no /dev/null device node: %+v", spec.Linux.Devices)
	}
	allowed := false
	for _, d := range spec.Linux.Resources.Devices {
		if d.Allow && d.Type == "c" && d.Major != nil && *d.Major == 1 && d.Minor != nil && *d.Minor == 3 && d.Access == "rwm" {
			allowed = true
		}
	}
	if !allowed {
		t.Errorf("no cgroup rule for /dev/null: %+v", spec.Linux.Resources.Devices)
	}
	mounted := false
	for _, m := range spec.Mounts {
		if m.Destination == "/var/cache/nvbind" && m.Source == cache && m.Type == "bind" {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("cache dir %s not mounted at /var/cache/nvbind", filepath.Base(cache))
	}
	// Applying the same Resolved twice gives the same spec (nothing is
	// consumed or appended twice).
	again := specconv.Example()
	again.Process.Env = append(again.Process.Env, "TF_FORCE_GPU_ALLOW_GROWTH=false")
	again.Process.Rlimits = append(again.Process.Rlimits, rspec.POSIXRlimit{Type: "RLIMIT_MEMLOCK", Hard: 65536, Soft: 65536})
	if _, err := r.Apply(again); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(again.Process.Env) != fmt.Sprint(spec.Process.Env) || len(again.Linux.Devices) != len(spec.Linux.Devices) {
		t.Errorf("second Apply differs")
	}
}

func BenchmarkResolveOllama(b *testing.B) {
	cfg := config.Default()
	for i := 0; i < b.N; i++ {
		c, err := LoadCatalog(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Resolve("ollama", map[string]string{"model": "llama3.1:70b", "gpu-memory": "80GiB"}, Target{GPUs: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
