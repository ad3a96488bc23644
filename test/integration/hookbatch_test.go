package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHookOneProcessCleanEnv: a GPU container with graphics (links, loader
// cache and /dev/dri modes to set) starts nvbind-hook once, with nothing
// in its environment but the spec's explicit PATH, although the image sets
// LD_PRELOAD, GODEBUG and GOMAXPROCS; and the hook still does all its work.
// A wrapper in place of nvbind-hook records each call and its environment.
func TestHookOneProcessCleanEnv(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 2)
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	wrapper := filepath.Join(dir, "nvbind-hook")
	script := fmt.Sprintf("#!/bin/sh\n{ echo CALL \"$*\"; env; } >> %s\nexec %s \"$@\"\n", calls, bins.Hook)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// The spec names the wrapper as its hook.
	spec := filepath.Join(s.SpecDir, "nvidia.yaml")
	data, _ := os.ReadFile(spec)
	os.WriteFile(spec, []byte(strings.ReplaceAll(string(data), bins.Hook, wrapper)), 0o644)

	b := newBundle(t, "sh", "-c", "ls -l /usr/lib/x86_64-linux-gnu/libcuda.so.1 /etc/ld.so.cache && stat -c %a /dev/dri")
	b.SetEnv("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=all",
		"LD_PRELOAD=/nonexistent/evil.so", "GODEBUG=inittrace=1", "GOMAXPROCS=1")
	b.Save(t)
	res := runContainer(t, s, b)
	if res.Code != 0 {
		t.Fatalf("container failed: %s", res)
	}
	if !strings.Contains(res.Stdout, "libcuda.so.1 -> ") || !strings.Contains(res.Stdout, "/etc/ld.so.cache") {
		t.Errorf("hook work missing in the container:\n%s", res.Stdout)
	}
	log, _ := os.ReadFile(calls)
	if n := strings.Count(string(log), "CALL "); n != 1 {
		t.Errorf("nvbind-hook started %d times, want once:\n%s", n, log)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		if strings.HasPrefix(line, "CALL ") {
			continue
		}
		// sh itself adds PWD (and SHLVL, _) before running env.
		name, _, _ := strings.Cut(line, "=")
		switch name {
		case "PATH", "PWD", "SHLVL", "_":
		default:
			t.Errorf("hook environment holds %q", line)
		}
	}
}
