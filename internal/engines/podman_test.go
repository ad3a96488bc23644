package engines

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPodmanEditInPlace(t *testing.T) {
	t.Setenv("CONTAINERS_CONF", "")
	tests := map[string]string{
		"no file": "",
		"debian-like": `[containers]
# comment kept
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
#runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun"]

# Paths to look for a valid OCI runtime
[engine.runtimes]
#crun = ["/usr/bin/crun"]
runc = ["/usr/sbin/runc"]
`,
		"json list already there":      "[engine]\nruntime_supports_json = [\"crun\", \"runc\", \"myrt\"]\n",
		"runtimes table before engine": "[engine.runtimes]\nrunc = [\"/usr/sbin/runc\"]\n",
	}
	for name, orig := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "containers.conf")
			if orig != "" {
				writeFile(t, path, orig)
			}
			opts := Options{Engine: Podman, ConfigPath: path, RuntimePath: rt}
			if _, err := Configure(opts); err != nil {
				t.Fatal(err)
			}
			got := readFile(t, path)
			d, err := parseTOMLDoc([]byte(got), false)
			if err != nil {
				t.Fatalf("result does not parse: %v\n%s", err, got)
			}
			if v, _ := d.value("engine", "runtimes", "nvbind"); v == nil || v.([]any)[0] != rt {
				t.Errorf("engine.runtimes.nvbind = %v\n%s", v, got)
			}
			v, _ := d.value("engine", "runtime_supports_json")
			list, _ := anyStrings(v)
			for _, want := range []string{"runc", "nvbind", "nvbind-runtime"} {
				if !strings.Contains(strings.Join(list, ","), want) {
					t.Errorf("runtime_supports_json %v lacks %s", list, want)
				}
			}
			if strings.Contains(orig, "myrt") && !strings.Contains(strings.Join(list, ","), "myrt") {
				t.Errorf("user's runtime dropped: %v", list)
			}
			for _, line := range strings.Split(orig, "\n") {
				if !strings.HasPrefix(line, "runtime_supports_json") && !strings.Contains(got, line) {
					t.Errorf("line %q lost:\n%s", line, got)
				}
			}
			if res, err := Configure(opts); err != nil || res.Changed {
				t.Fatalf("second run: changed=%v err=%v", res.Changed, err)
			}
			if reg, _, _ := podmanRegistered(podmanFiles{Main: path}); reg != rt {
				t.Errorf("registered = %q", reg)
			}
			if _, err := Unconfigure(opts); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, path); got != orig {
				t.Errorf("unconfigure left:\n%q\nwant:\n%q", got, orig)
			}
		})
	}
}

func TestPodmanDropIn(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CONTAINERS_CONF", "")
	files := podmanFiles{
		Vendor:    filepath.Join(dir, "usr/containers.conf"),
		Main:      filepath.Join(dir, "etc/containers.conf"),
		DropInDir: filepath.Join(dir, "etc/containers.conf.d"),
	}
	writeFile(t, files.Vendor, "[engine]\n#runtime_supports_json = [\"crun\"]\n")
	writeFile(t, files.Main, "[engine]\nruntime_supports_json = [\"crun\", \"runc\", \"mine\"]\n")
	opts := Options{Engine: Podman, RuntimePath: rt}
	p, err := podmanPlan(opts, true, files)
	if err != nil {
		t.Fatal(err)
	}
	res, err := apply(Podman, p, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != filepath.Join(files.DropInDir, "99-nvbind.conf") || res.Backup != "" {
		t.Errorf("path %s backup %q", res.Path, res.Backup)
	}
	want := dropInHeader + `
[engine]
runtime_supports_json = ["crun", "runc", "mine", "nvbind", "nvbind-runtime"]

[engine.runtimes]
nvbind = ["` + rt + `"]
`
	if got := readFile(t, res.Path); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if reg, file, _ := podmanRegistered(files); reg != rt || file != res.Path {
		t.Errorf("registered = %q in %q", reg, file)
	}
	// Idempotent, even though the drop-in is now part of what Podman reads.
	if p, _ := podmanPlan(opts, true, files); !p.unchanged {
		t.Errorf("second run would change the drop-in to:\n%s", p.new)
	}
	p, _ = podmanPlan(opts, false, files)
	if _, err := apply(Podman, p, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(res.Path); !os.IsNotExist(err) {
		t.Error("unconfigure left the drop-in")
	}
}

func TestCRIO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crio.conf")
	orig := "[crio]\n# storage\nroot = \"/var/lib/containers/storage\"\n\n[crio.runtime]\ndefault_runtime = \"runc\"\n\n[crio.runtime.runtimes.runc]\nruntime_path = \"\"\n"
	writeFile(t, path, orig)
	opts := Options{Engine: CRIO, ConfigPath: path, RuntimePath: rt}
	if _, err := Configure(opts); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, path)
	if !strings.HasPrefix(got, orig) || !strings.Contains(got, "[crio.runtime.runtimes.nvbind]") || !strings.Contains(got, `runtime_type = "oci"`) {
		t.Errorf("got:\n%s", got)
	}
	if reg, _ := crioRegistered(path, t.TempDir()); reg != rt {
		t.Errorf("registered = %q", reg)
	}
	if res, _ := Configure(opts); res.Changed {
		t.Error("second run changed the file")
	}
	if _, err := Unconfigure(opts); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != orig {
		t.Errorf("unconfigure left:\n%s", got)
	}
}

func TestPodmanHonoursContainersConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mine.conf")
	t.Setenv("CONTAINERS_CONF", path)
	p, err := podmanPlan(Options{Engine: Podman, RuntimePath: rt}, true, podmanFiles{DropInDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if p.path != path || p.owned {
		t.Errorf("target %s (owned %v), want CONTAINERS_CONF %s edited in place", p.path, p.owned, path)
	}
}
