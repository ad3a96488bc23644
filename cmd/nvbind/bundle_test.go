package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestBundleCLI(t *testing.T) {
	work := t.TempDir()
	rec := renderTo(t, work, "--service", "aks", "--accelerator", "gb200", "--intent", "training")

	for _, deployer := range []string{"helm", "argocd"} {
		out := filepath.Join(work, deployer)
		code, stdout, errs := cli(t, bundleCmd, "--recipe", rec, "-o", out, "--deployer", deployer,
			"--set", "gpu-operator:driver.version=570.172.08", "--repo-url", "https://git.example.com/x.git")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", deployer, code, errs)
		}
		if !strings.Contains(stdout, "for aks-gb200-ubuntu-training ("+deployer+") to "+out) {
			t.Errorf("stdout = %q", stdout)
		}
		cmd := exec.Command("sha256sum", "-c", "checksums.txt")
		cmd.Dir = out
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: sha256sum -c: %v\n%s", deployer, err, b)
		}
		values, err := os.ReadFile(filepath.Join(out, "components/gpu-operator/values.yaml"))
		if err != nil || !strings.Contains(string(values), "version: 570.172.08") {
			t.Errorf("%s: --set not applied: %v\n%s", deployer, err, values)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "argocd", "argocd", "app-of-apps.yaml")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(work, "helm", "deploy.sh")); err != nil {
		t.Error(err)
	}

	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, "keep.txt"), []byte("x"), 0o644)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--recipe", rec}, 2, "--recipe and -o are required"},
		{[]string{"--recipe", rec, "-o", filepath.Join(work, "x"), "--deployer", "flux"}, 2, `unknown deployer "flux"`},
		{[]string{"--recipe", rec, "-o", filepath.Join(work, "x"), "--set", "ghost:a=1"}, 2, `no component "ghost"`},
		{[]string{"--recipe", aicrH100, "-o", filepath.Join(work, "x")}, 2, `kind is "Snapshot"`},
		{[]string{"--recipe", rec, "-o", foreign}, 1, "holds no earlier bundle"},
	} {
		code, _, errs := cli(t, bundleCmd, tt.args...)
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d", tt.args, code, tt.code)
		}
		oneLine(t, errs, tt.want)
	}
	if _, err := os.Stat(filepath.Join(work, "x")); !os.IsNotExist(err) {
		t.Errorf("a failed bundle left a directory behind (%v)", err)
	}
}
