package engines

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// debianContainerd is Debian 12's /etc/containerd/config.toml.
const debianContainerd = `version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
`

func containerdOpts(path string) Options {
	return Options{Engine: Containerd, ConfigPath: path, RuntimePath: rt}
}

func TestContainerdMainFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	orig := "# site settings\n" + debianContainerd
	writeFile(t, path, orig)
	res, err := Configure(containerdOpts(path))
	if err != nil {
		t.Fatal(err)
	}
	want := orig + `
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvbind]  # added by nvbind
runtime_type = "io.containerd.runc.v2"  # added by nvbind

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvbind.options]  # added by nvbind
BinaryName = "` + rt + `"  # added by nvbind
`
	if got := readFile(t, path); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if res.Path != path || res.Backup != path+".nvbind.bak" {
		t.Errorf("result path=%s backup=%s", res.Path, res.Backup)
	}
	if reg, err := containerdRegistered(path); err != nil || reg != rt {
		t.Errorf("registered = %q, %v", reg, err)
	}
	if res, err := Configure(containerdOpts(path)); err != nil || res.Changed {
		t.Fatalf("second run: changed=%v err=%v", res.Changed, err)
	}
	if _, err := Unconfigure(containerdOpts(path)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != orig {
		t.Errorf("unconfigure left:\n%s\nwant the original:\n%s", got, orig)
	}
}

func TestContainerdVersion3DropIn(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	orig := "version = 3\nimports = [\"conf.d/*.toml\"]\n"
	writeFile(t, path, orig)
	res, err := Configure(containerdOpts(path))
	if err != nil {
		t.Fatal(err)
	}
	drop := filepath.Join(dir, "conf.d", "99-nvbind.toml")
	if res.Path != drop {
		t.Fatalf("wrote %s, want %s", res.Path, drop)
	}
	if got := readFile(t, path); got != orig {
		t.Errorf("main file changed:\n%s", got)
	}
	got := readFile(t, drop)
	for _, s := range []string{"version = 3\n", `[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvbind]`, `BinaryName = "` + rt + `"`} {
		if !strings.Contains(got, s) {
			t.Errorf("drop-in lacks %q:\n%s", s, got)
		}
	}
	if reg, _ := containerdRegistered(path); reg != rt {
		t.Errorf("registered = %q", reg)
	}
	if res, _ := Configure(containerdOpts(path)); res.Changed {
		t.Error("second run changed the drop-in")
	}
	if _, err := Unconfigure(containerdOpts(path)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(drop); !os.IsNotExist(err) {
		t.Errorf("drop-in still there: %v", err)
	}
}

func TestContainerdVersion2ImportsEditsMain(t *testing.T) {
	// containerd 1.x replaces whole plugin sections from imported files, so
	// a drop-in would wipe the main file's CRI settings.
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	writeFile(t, path, "version = 2\nimports = [\""+dir+"/conf.d/*.toml\"]\n")
	writeFile(t, filepath.Join(dir, "conf.d", "10-cri.toml"), "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nsandbox_image = \"x\"\n")
	res, err := Configure(containerdOpts(path))
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != path {
		t.Errorf("wrote %s, want the main file", res.Path)
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), "10-cri.toml") {
		t.Errorf("no warning about the imported CRI section: %v", res.Notes)
	}
}

func TestContainerdNewFile(t *testing.T) {
	for _, v := range []int{2, 3} {
		path := filepath.Join(t.TempDir(), "config.toml")
		p, err := containerdPlan(containerdOpts(path), true, func() int { return v })
		if err != nil {
			t.Fatal(err)
		}
		got := string(p.new)
		if !strings.HasPrefix(got, "version = "+string(rune('0'+v))+"\n") || !strings.Contains(got, strings.Join(containerdRuntimeTable(v)[:2], `."`)) {
			t.Errorf("version %d:\n%s", v, got)
		}
	}
}

func TestContainerdRefuses(t *testing.T) {
	tests := map[string]string{
		"version 1":   "[plugins.cri]\nx = 1\n",
		"version 4":   "version = 4\n",
		"bad TOML":    "version = 2\n[plugins\n",
		"inline cri":  "version = 2\nplugins = { \"io.containerd.grpc.v1.cri\" = { containerd = { runtimes = { runc = {} } } } }\n",
		"array table": "version = 2\n[[plugins]]\n",
	}
	for name, in := range tests {
		path := filepath.Join(t.TempDir(), "config.toml")
		writeFile(t, path, in)
		_, err := Configure(containerdOpts(path))
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want an error naming the file", name, err)
		}
		if got := readFile(t, path); got != in {
			t.Errorf("%s: file changed:\n%s", name, got)
		}
		var pe *ParseError
		if name == "bad TOML" && !errors.As(err, &pe) {
			t.Errorf("bad TOML: %T is not a ParseError", err)
		}
	}
}

func TestRuntimeClassYAML(t *testing.T) {
	y := RuntimeClassYAML()
	for _, s := range []string{"apiVersion: node.k8s.io/v1", "kind: RuntimeClass", "name: nvbind", "handler: nvbind"} {
		if !strings.Contains(y, s) {
			t.Errorf("RuntimeClass lacks %q:\n%s", s, y)
		}
	}
}
