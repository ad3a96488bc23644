package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDoorArgv(t *testing.T) {
	tests := []struct {
		argv      []string
		env, want string
	}{
		{[]string{"nvbind-hook", "precreate"}, "", "nvbind-hook precreate"},
		{[]string{"nvbind-hook", "precreate"}, "/c.toml", "nvbind-hook precreate --config=/c.toml"},
		{[]string{"nvbind-hook", "prestart", "--config", "/a"}, "/c.toml", "nvbind-hook prestart --config /a"},
		{[]string{"nvbind-hook", "chmod", "--mode", "0644"}, "/c.toml", "nvbind-hook chmod --mode 0644"},
		// dockerd's --gpus hook.
		{[]string{"/usr/bin/nvidia-container-runtime-hook", "prestart"}, "/c.toml", "/usr/bin/nvidia-container-runtime-hook prestart --config=/c.toml"},
		{[]string{"nvidia-container-runtime-hook", "poststop"}, "", "nvidia-container-runtime-hook noop"},
		{[]string{"nvidia-container-runtime-hook"}, "", "nvidia-container-runtime-hook noop"},
	}
	for _, tt := range tests {
		if got := strings.Join(doorArgv(tt.argv, tt.env), " "); got != tt.want {
			t.Errorf("doorArgv(%q, %q) = %q, want %q", tt.argv, tt.env, got, tt.want)
		}
	}
	if needsCleanEnv([]string{"nvbind-hook", "precreate"}) || !needsCleanEnv([]string{"nvbind-hook", "prestart"}) || !needsCleanEnv([]string{"nvbind-hook"}) {
		t.Error("needsCleanEnv")
	}
}

func TestRunDoor(t *testing.T) {
	tests := []struct {
		args    []string
		stdin   string
		ok      bool
		code    int
		stdout  string
		wantErr string
	}{
		{args: []string{"chmod"}, ok: false},
		{args: []string{"noop"}, ok: true},
		// No request: the spec back before any config is read.
		{args: []string{"precreate", "--config", "/nonexistent/dir/x.toml"}, stdin: `{"ociVersion":"1.2.0"}`, ok: true, stdout: `{"ociVersion":"1.2.0"}`},
		{args: []string{"precreate"}, stdin: "", ok: true, code: 1, wantErr: "nvbind-hook: precreate: no proposed config.json on stdin"},
		{args: []string{"precreate", "extra"}, ok: true, code: 2, wantErr: `unexpected argument "extra"`},
		{args: []string{"prestart", "--bogus"}, ok: true, code: 2, wantErr: "flag provided but not defined"},
		{args: []string{"prestart", "--config", "/nonexistent.toml"}, stdin: "{}", ok: true, code: 1, wantErr: "nvbind-hook: prestart: invalid container state on stdin"},
	}
	for _, tt := range tests {
		var out, errs bytes.Buffer
		code, ok := runDoor(tt.args, strings.NewReader(tt.stdin), &out, &errs)
		if ok != tt.ok || code != tt.code || out.String() != tt.stdout || !strings.Contains(errs.String(), tt.wantErr) || strings.Count(errs.String(), "\n") > 1 {
			t.Errorf("%q: code %d ok %v stdout %q stderr %q", tt.args, code, ok, out.String(), errs.String())
		}
	}
}
