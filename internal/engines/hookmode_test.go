package engines

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHookPlan(t *testing.T) {
	dir := t.TempDir()
	hook := "/usr/bin/nvbind-hook"
	for _, tt := range []struct {
		engine, stage string
	}{{Podman, "precreate"}, {CRIO, "prestart"}} {
		path := filepath.Join(dir, tt.engine, HookFileName)
		opts := Options{Engine: tt.engine, Mode: ModeHook, ConfigPath: path, RuntimePath: hook, HookEnv: []string{"NVBIND_CONFIG=/c.toml"}}
		res, err := Configure(opts)
		if err != nil || !res.Changed {
			t.Fatalf("%s: configure: %v %+v", tt.engine, err, res)
		}
		data, _ := os.ReadFile(path)
		var f struct {
			Version string
			Hook    struct {
				Path string
				Args []string
				Env  []string
			}
			When   map[string]any
			Stages []string
		}
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		if f.Version != "1.0.0" || f.Hook.Path != hook || strings.Join(f.Hook.Args, " ") != "nvbind-hook "+tt.stage ||
			strings.Join(f.Stages, ",") != tt.stage || f.When["always"] != true || len(f.When) != 1 || f.Hook.Env[0] != "NVBIND_CONFIG=/c.toml" {
			t.Errorf("%s: hooks.d file:\n%s", tt.engine, data)
		}
		if res, err := Configure(opts); err != nil || res.Changed {
			t.Errorf("%s: second configure changed: %v %+v", tt.engine, err, res)
		}
		if res, err := Unconfigure(opts); err != nil || !res.Removed {
			t.Errorf("%s: unconfigure: %v %+v", tt.engine, err, res)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s: unconfigure left the file", tt.engine)
		}
	}
	// Another tool's file of the same name is never touched.
	foreign := filepath.Join(dir, "foreign.json")
	writeFile(t, foreign, `{"version":"1.0.0","hook":{"path":"/x","args":["x"]},"when":{"always":true},"stages":["prestart"]}`)
	for _, configure := range []bool{true, false} {
		if _, err := run(Options{Engine: Podman, Mode: ModeHook, ConfigPath: foreign, RuntimePath: hook}, configure); err == nil || !strings.Contains(err.Error(), "is not nvbind's") {
			t.Errorf("configure=%v over another tool's file: %v", configure, err)
		}
	}
	for _, opts := range []Options{
		{Engine: Docker, Mode: ModeHook, RuntimePath: hook},
		{Engine: Containerd, Mode: ModeHook, RuntimePath: hook},
		{Engine: Podman, Mode: ModeGpus, RuntimePath: hook},
		{Engine: Podman, Mode: "sideways", RuntimePath: hook},
		{Engine: Docker, Mode: ModeGpus, RuntimePath: hook, SetAsDefault: true},
	} {
		if _, err := Configure(opts); err == nil {
			t.Errorf("%+v: no error", opts)
		}
	}
}

func TestGpusLink(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", filepath.Join(dir, "path"))
	hook := filepath.Join(dir, "nvbind-hook")
	writeFile(t, hook, "")
	link := filepath.Join(dir, "bin", NvidiaHookName)
	opts := Options{Engine: Docker, Mode: ModeGpus, ConfigPath: link, RuntimePath: hook}
	if res, err := Configure(opts); err != nil || !res.Changed {
		t.Fatalf("configure: %v %+v", err, res)
	}
	if target, _ := os.Readlink(link); target != hook {
		t.Fatalf("link -> %q", target)
	}
	if res, err := Configure(opts); err != nil || res.Changed {
		t.Errorf("second configure: %v %+v", err, res)
	}
	if res, err := Unconfigure(opts); err != nil || !res.Removed {
		t.Errorf("unconfigure: %v %+v", err, res)
	}
	if _, err := os.Lstat(link); err == nil {
		t.Error("unconfigure left the link")
	}
	// NVIDIA's hook at the link's place, or anywhere on PATH: left alone.
	writeFile(t, link, "#!/bin/sh\n")
	if _, err := Configure(opts); err == nil || !strings.Contains(err.Error(), "is not nvbind's") {
		t.Errorf("configure over a program: %v", err)
	}
	if _, err := Unconfigure(opts); err == nil {
		t.Errorf("unconfigure removed a program that is not nvbind's")
	}
	os.Remove(link)
	onPath := filepath.Join(dir, "path", NvidiaHookName)
	writeFile(t, onPath, "#!/bin/sh\n")
	os.Chmod(onPath, 0o755)
	if _, err := Configure(opts); err == nil || !strings.Contains(err.Error(), "already installed at "+onPath) {
		t.Errorf("configure with NVIDIA's hook on PATH: %v", err)
	}
	if _, err := os.Lstat(link); err == nil {
		t.Error("configure made a link beside NVIDIA's hook")
	}
}

func TestDoctorHookModes(t *testing.T) {
	opts := doctorFixture(t)
	dir := t.TempDir()
	etc, share := filepath.Join(dir, "etc"), filepath.Join(dir, "share")
	opts.HookDirs = []string{etc, share}
	pathDir := filepath.Join(dir, "path")
	t.Setenv("PATH", pathDir)
	if r := Doctor(opts); checkOf(t, r, "mode-hook").Status != Skip || checkOf(t, r, "mode-gpus").Status != Skip {
		t.Errorf("nothing installed: %+v", r.Checks)
	}
	hook := filepath.Join(dir, "nvbind-hook")
	writeFile(t, hook, "")
	os.Chmod(hook, 0o755)
	if _, err := Configure(Options{Engine: Podman, Mode: ModeHook, ConfigPath: filepath.Join(share, HookFileName), RuntimePath: hook}); err != nil {
		t.Fatal(err)
	}
	if _, err := Configure(Options{Engine: Docker, Mode: ModeGpus, ConfigPath: filepath.Join(pathDir, NvidiaHookName), RuntimePath: hook}); err != nil {
		t.Fatal(err)
	}
	r := Doctor(opts)
	if c := checkOf(t, r, "mode-hook"); c.Status != Pass || !strings.Contains(c.Message, "stage precreate") {
		t.Errorf("mode-hook: %+v", c)
	}
	if c := checkOf(t, r, "mode-gpus"); c.Status != Pass || !strings.Contains(c.Message, "nvbind-hook") {
		t.Errorf("mode-gpus: %+v", c)
	}
	// Both doors wired into one engine: a warning with the fix.
	opts.Engines = []Engine{{Name: Podman, Installed: true, Registered: true, RuntimePath: opts.RuntimePath},
		{Name: Docker, Installed: true, Registered: true, RuntimePath: opts.RuntimePath}}
	r = Doctor(opts)
	for _, name := range []string{"mode-hook", "mode-gpus"} {
		if c := checkOf(t, r, name); c.Status != Warn || !strings.Contains(c.Message, "twice") || c.Fix == "" {
			t.Errorf("%s: %+v", name, c)
		}
	}
	// Podman's file in the first dir, CRI-O's in the second: both named.
	if _, err := Configure(Options{Engine: Podman, Mode: ModeHook, ConfigPath: filepath.Join(etc, HookFileName), RuntimePath: hook}); err != nil {
		t.Fatal(err)
	}
	opts.Engines = []Engine{}
	if c := checkOf(t, Doctor(opts), "mode-hook"); c.Status != Pass || !strings.Contains(c.Message, filepath.Join(etc, HookFileName)+" (stage precreate)") ||
		!strings.Contains(c.Message, "also "+filepath.Join(share, HookFileName)) {
		t.Errorf("two hooks.d files: %+v", c)
	}
	// Another tool's same-named file in the first dir masks nvbind's for
	// Podman.
	writeFile(t, filepath.Join(etc, HookFileName), `{"version":"1.0.0","hook":{"path":"/x","args":["x"]},"when":{"always":true},"stages":["prestart"]}`)
	if m := DetectHookModes(opts.HookDirs); m.HooksFile != "" || len(m.Others) != 1 {
		t.Errorf("masked hooks.d file: %+v", m)
	}
}
