package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, f func([]string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := f(args, &out, &errb)
	return code, out.String(), errb.String()
}

func runtimeCLI(args []string, out, errb *bytes.Buffer) int { return runtimeCmd(args, out, errb) }

func TestRuntimeConfigureCLI(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "daemon.json")
	orig := `{"log-level": "warn"}`
	if err := os.WriteFile(cfg, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := filepath.Join(dir, "nvbind-runtime")
	os.WriteFile(rt, []byte("#!/bin/sh\n"), 0o755)

	code, out, errs := runCLI(t, runtimeCLI, "configure", "--runtime", "docker", "--config", cfg, "--path", rt, "--dry-run")
	if code != 0 || !strings.HasPrefix(out, "would write "+cfg+":\n{") || !strings.Contains(out, rt) {
		t.Fatalf("dry run: %d %q %q", code, out, errs)
	}
	if data, _ := os.ReadFile(cfg); string(data) != orig {
		t.Fatal("dry run wrote the file")
	}

	code, out, _ = runCLI(t, runtimeCLI, "configure", "--runtime", "docker", "--config", cfg, "--path", rt, "--set-as-default")
	if code != 0 || !strings.Contains(out, "docker: wrote "+cfg) || !strings.Contains(out, cfg+".nvbind.bak") {
		t.Fatalf("configure: %d %q", code, out)
	}
	data, _ := os.ReadFile(cfg)
	if !strings.Contains(string(data), `"default-runtime": "nvbind"`) || !strings.Contains(string(data), `"log-level": "warn"`) {
		t.Errorf("daemon.json:\n%s", data)
	}

	code, out, _ = runCLI(t, runtimeCLI, "configure", "--runtime", "docker", "--config", cfg, "--path", rt, "--set-as-default")
	if code != 0 || !strings.Contains(out, "nothing changed") {
		t.Errorf("second configure: %d %q", code, out)
	}

	code, out, _ = runCLI(t, runtimeCLI, "unconfigure", "--runtime", "docker", "--config", cfg)
	if code != 0 || !strings.Contains(out, "docker: wrote") {
		t.Errorf("unconfigure: %d %q", code, out)
	}
	data, _ = os.ReadFile(cfg)
	if strings.Contains(string(data), "nvbind") || !strings.Contains(string(data), "log-level") {
		t.Errorf("after unconfigure:\n%s", data)
	}
}

func TestRuntimeCLIErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "config.toml")
	os.WriteFile(bad, []byte("version = 2\n[plugins\n"), 0o644)
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "usage"},
		{[]string{"configure"}, 2, "--runtime is required"},
		{[]string{"configure", "--runtime", "lxc", "--config", bad}, 1, `unknown engine "lxc"`},
		{[]string{"configure", "--runtime", "containerd", "--config", bad}, 1, bad + ": cannot parse, left unchanged: line 2"},
		{[]string{"configure", "--runtime", "docker", "--print-runtimeclass"}, 2, "containerd and crio"},
		{[]string{"configure", "--runtime", "docker", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"unconfigure", "--runtime", "docker", "--set-as-default"}, 2, "flag provided but not defined"},
	}
	for _, tt := range tests {
		code, _, errs := runCLI(t, runtimeCLI, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, errs, tt.code, tt.msg)
		}
	}
	if data, _ := os.ReadFile(bad); string(data) != "version = 2\n[plugins\n" {
		t.Error("unparseable file was changed")
	}
}

func TestPrintRuntimeClass(t *testing.T) {
	code, out, _ := runCLI(t, runtimeCLI, "configure", "--runtime", "containerd", "--print-runtimeclass")
	if code != 0 || !strings.Contains(out, "kind: RuntimeClass") || !strings.Contains(out, "handler: nvbind") {
		t.Errorf("%d %q", code, out)
	}
}
