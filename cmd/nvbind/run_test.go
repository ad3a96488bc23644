package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestVisibleDevices(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"all", "all", ""},
		{"", "all", ""},
		{"none", "none", ""},
		{"2", "0,1", ""},
		{"0,2", "0,2", ""},
		{"GPU-abc,MIG-def", "GPU-abc,MIG-def", ""},
		{"0", "", "for GPU 0 alone: device=0"}, // a count, as docker --gpus reads it
		{"1:0", "1:0", ""},
		{"device=0", "0", ""},
		{`"device=1,2"`, "1,2", ""},
		{"0,,1", "", "is not a GPU"},
		{"nvidia.com/gpu=0", "", "is not a GPU"},
		{"300", "", "a count must be 1 to 256"},
	} {
		got, err := visibleDevices(tt.in)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: %q, %v; want error %q", tt.in, got, err, tt.err)
			}
		case err != nil || got != tt.want:
			t.Errorf("%q: %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestRunBuildsEngineCommand(t *testing.T) {
	saved, savedExec := findDoor, execEngine
	t.Cleanup(func() { findDoor, execEngine = saved, savedExec })
	doors := map[string]*door{
		"docker": {engine: "docker", binary: "/usr/bin/docker", runArgs: []string{"--runtime", "nvbind"}, why: "docker 20.10.24 has no --annotation (Docker 24 or later)"},
		"podman": {engine: "podman", binary: "/usr/bin/podman", runArgs: []string{"--runtime", "nvbind"}, annotations: true},
	}
	findDoor = func(want string) (*door, error) {
		if want == "" {
			want = "docker"
		}
		if d := doors[want]; d != nil {
			return d, nil
		}
		return nil, errors.New("no door")
	}
	var execd []string
	execEngine = func(bin string, argv []string) error { execd = argv; return nil }

	for _, tt := range []struct {
		args []string
		code int
		want string // the engine command (exec'd or printed), or the error
	}{
		{[]string{"ubuntu", "nvidia-smi", "-L"}, 0,
			"/usr/bin/docker run --rm --runtime nvbind --env NVIDIA_VISIBLE_DEVICES=all ubuntu nvidia-smi -L"},
		{[]string{"--gpus", "2", "-e", "A=b", "-v", "/data:/data", "-it", "ubuntu"}, 0,
			"/usr/bin/docker run --rm --runtime nvbind --interactive --tty --env NVIDIA_VISIBLE_DEVICES=0,1 --env A=b --volume /data:/data ubuntu"},
		{[]string{"--engine", "podman", "--profile", "ml", "--param", "cache-dir=/var/cache/nvbind/ml", "img", "--gpus", "x"}, 0,
			"/usr/bin/podman run --rm --runtime nvbind --env NVIDIA_VISIBLE_DEVICES=all --env NVBIND_PROFILE=ml --annotation nvbind.io/profile=ml --annotation nvbind.io/profile.cache-dir=/var/cache/nvbind/ml img --gpus x"},
		{[]string{"--profile", "ml", "--param", "shm-size=1g", "img"}, 1, "docker cannot pass profile parameters: docker 20.10.24 has no --annotation"},
		{[]string{"--param", "shm-size=1g", "img"}, 2, "--param needs --profile"},
		{[]string{"--engine", "lxc", "img"}, 2, `--engine "lxc": want docker or podman`},
		{[]string{"--gpus", "a=b", "img"}, 2, `--gpus "a=b"`},
		{nil, 2, "want an IMAGE"},
	} {
		execd = nil
		var out, errb bytes.Buffer
		code := execute(append([]string{"run"}, tt.args...), &out, &errb)
		got := strings.Join(execd, " ")
		if code != 0 {
			got = errb.String()
		}
		if code != tt.code || !strings.Contains(got, tt.want) {
			t.Errorf("run %v: exit %d, %q; want %d, %q", tt.args, code, got, tt.code, tt.want)
		}
	}

	// docker's --gpus door (nvbind-hook as dockerd's prestart hook): the
	// request goes as --gpus, not as the env var.
	doors["docker"] = &door{engine: "docker", binary: "/usr/bin/docker", gpusFlag: true}
	for args, want := range map[string]string{
		"--gpus 1,3 img": `/usr/bin/docker run --rm --gpus "device=1,3" img`,
		"img":            "/usr/bin/docker run --rm --gpus all img",
		"--gpus 2 img":   `/usr/bin/docker run --rm --gpus "device=0,1" img`,
	} {
		execd = nil
		var out, errb bytes.Buffer
		if code := execute(append([]string{"run"}, strings.Fields(args)...), &out, &errb); code != 0 || strings.Join(execd, " ") != want {
			t.Errorf("run %s (--gpus door): exit %d, %q %s; want %q", args, code, strings.Join(execd, " "), errb.String(), want)
		}
	}

	// --dry-run prints a command a shell reads back the same.
	var out, errb bytes.Buffer
	if code := execute([]string{"run", "--dry-run", "--engine", "podman", "img", "sh", "-c", "echo 'hi there'"}, &out, &errb); code != 0 {
		t.Fatalf("dry run: %d %s", code, errb.String())
	}
	if want := `/usr/bin/podman run --rm --runtime nvbind --env NVIDIA_VISIBLE_DEVICES=all img sh -c 'echo '\''hi there'\'''`; strings.TrimSpace(out.String()) != want {
		t.Errorf("dry run: %s\nwant %s", out.String(), want)
	}
}
