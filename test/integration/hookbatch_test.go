package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHookOneProcessCleanEnv: a GPU container with graphics (links, loader
// cache and /dev/dri modes to set) starts nvbind-hook once, with nothing
// in its environment but the spec's explicit PATH, although the image sets
// LD_PRELOAD, GODEBUG and GOMAXPROCS; and the hook still does all its work.
// A wrapper in place of nvbind-hook records each call and its environment.
func TestHookOneProcessCleanEnv(t *testing.T) {
	requireRoot(t)
	s := newGeneratedSimRoot(t, 2)
	calls, _ := hookWrapper(t, s, `{ echo CALL "$*"; env; }`)

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

// TestHookWorkInRuntime: on runc, nvbind-runtime does the hook's work
// itself before runc starts (hook.in-runtime, the default): no nvbind-hook
// process runs, the spec runc gets has no createContainer hook, and the
// container sees exactly what the hook would have made: the .so links,
// the loader cache, the DRM by-path links and a 0755 /dev/dri. Where it
// cannot do that exactly (here: a umask that would leave /dev/dri 0700)
// the hook runs as before, and the container sees the same again.
func TestHookWorkInRuntime(t *testing.T) {
	requireRoot(t)
	script := "ldconfig -p | grep -c nvidia; ldconfig -p | grep libcuda; ls -l /usr/lib/x86_64-linux-gnu | grep -c ' -> '; " +
		"ls -l /dev/dri/by-path | grep -o 'pci.*'; stat -c '%a %n' /dev/dri"
	// configure points s's spec and config at a wrapper of nvbind-hook
	// that counts its calls in the returned file.
	configure := func(t *testing.T, s *SimRoot, hookProcess bool, wrapper string) {
		s.HookProcess = hookProcess
		s.WriteConfig(t, "")
		cfg, _ := os.ReadFile(s.Config)
		os.WriteFile(s.Config, []byte(strings.Replace(string(cfg), fmt.Sprintf("path = %q", bins.Hook), fmt.Sprintf("path = %q", wrapper), 1)), 0o644)
	}
	setup := func(t *testing.T, hookProcess bool, devices string) (*SimRoot, *Bundle, string, string) {
		s := newGeneratedSimRoot(t, 2)
		calls, wrapper := hookWrapper(t, s, "echo CALL")
		configure(t, s, hookProcess, wrapper)
		b := newBundle(t, "sh", "-c", script)
		withLdconfig(t, b)
		b.SetEnv("NVIDIA_VISIBLE_DEVICES="+devices, "NVIDIA_DRIVER_CAPABILITIES=all")
		b.Save(t)
		return s, b, calls, wrapper
	}
	start := func(t *testing.T, s *SimRoot, b *Bundle, calls string, umask int) (Result, int) {
		t.Helper()
		os.Remove(calls)
		old := unix.Umask(umask)
		res := runContainer(t, s, b)
		unix.Umask(old)
		if res.Code != 0 {
			t.Fatalf("container failed: %s", res)
		}
		log, _ := os.ReadFile(calls)
		return res, strings.Count(string(log), "CALL")
	}
	run := func(t *testing.T, hookProcess bool, umask int) (Result, int, []byte) {
		t.Helper()
		s, b, calls, _ := setup(t, hookProcess, "all")
		res, n := start(t, s, b, calls, umask)
		return res, n, b.ReadConfig(t)
	}
	viaHook, hookCalls, _ := run(t, true, 0o022)
	if hookCalls != 1 {
		t.Fatalf("with in-runtime = false the hook ran %d times, want once", hookCalls)
	}
	for _, want := range []string{"libcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1",
		"pci-0000:", "-card -> ../card", "-render -> ../renderD", "755 /dev/dri"} {
		if !strings.Contains(viaHook.Stdout, want) {
			t.Fatalf("the hook's container lacks %q (test is broken):\n%s", want, viaHook.Stdout)
		}
	}
	for _, c := range []struct {
		name      string
		umask     int
		wantCalls int
	}{
		{"in runtime", 0o022, 0},
		{"restrictive umask keeps the hook", 0o077, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, calls, spec := run(t, false, c.umask)
			if calls != c.wantCalls {
				t.Errorf("nvbind-hook ran %d times, want %d", calls, c.wantCalls)
			}
			if hasHook := strings.Contains(string(spec), "nvbind-hook"); hasHook != (c.wantCalls == 1) {
				t.Errorf("spec names nvbind-hook: %v, want %v", hasHook, c.wantCalls == 1)
			}
			if res.Stdout != viaHook.Stdout {
				t.Errorf("the container sees something else than with the hook:\nhook:\n%s\nnow:\n%s", viaHook.Stdout, res.Stdout)
			}
		})
	}
	// A bundle created again with the spec nvbind-runtime rewrote (the
	// engine kept config.json), asking for other GPUs, with the hook's
	// work in the runtime and then with the hook process.
	t.Run("bundle created again", func(t *testing.T) {
		s, b, calls, wrapper := setup(t, false, "0")
		start(t, s, b, calls, 0o022)
		for _, hookProcess := range []bool{false, true} {
			configure(t, s, hookProcess, wrapper)
			spec := b.ReadConfig(t)
			os.WriteFile(b.ConfigPath(), bytes.Replace(spec, []byte("NVIDIA_VISIBLE_DEVICES=0"), []byte("NVIDIA_VISIBLE_DEVICES=all"), 1), 0o644)
			res, _ := start(t, s, b, calls, 0o022)
			if res.Stdout != viaHook.Stdout {
				t.Errorf("created again (hook process %v), the container sees:\n%s\nwant:\n%s", hookProcess, res.Stdout, viaHook.Stdout)
			}
		}
	})
}

// hookWrapper puts a script in place of nvbind-hook in s's generated spec:
// it appends what record prints to the returned calls file, then runs
// nvbind-hook with the same arguments.
func hookWrapper(t *testing.T, s *SimRoot, record string) (calls, wrapper string) {
	t.Helper()
	dir := t.TempDir()
	calls, wrapper = filepath.Join(dir, "calls"), filepath.Join(dir, "nvbind-hook")
	script := fmt.Sprintf("#!/bin/sh\n%s >> %s\nexec %s \"$@\"\n", record, calls, bins.Hook)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(s.SpecDir, "nvidia.yaml")
	data, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spec, []byte(strings.ReplaceAll(string(data), bins.Hook, wrapper)), 0o644); err != nil {
		t.Fatal(err)
	}
	return calls, wrapper
}
