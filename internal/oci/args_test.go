package oci

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	const cwd = "/run/cwd"
	tests := []struct {
		name string
		argv string
		want Args
	}{
		{"docker shim", "--root /run/docker/runtime-runc/moby --log /b/log.json --log-format json create --bundle /b --pid-file /b/init.pid abc",
			Args{Verb: "create", LogPath: "/b/log.json", LogFormat: "json", Bundle: "/b", ContainerID: "abc", Root: "/run/docker/runtime-runc/moby"}},
		{"equals forms", "--root=/r --log=/l --log-format=text --systemd-cgroup create --bundle=/b id1",
			Args{Verb: "create", LogPath: "/l", LogFormat: "text", Bundle: "/b", ContainerID: "id1", Root: "/r"}},
		{"single dash", "-root /r -log /l create -b /b id2",
			Args{Verb: "create", LogPath: "/l", Bundle: "/b", ContainerID: "id2", Root: "/r"}},
		{"short bundle", "create -b /bb id3", Args{Verb: "create", Bundle: "/bb", ContainerID: "id3"}},
		{"no bundle uses cwd", "run --detach id4", Args{Verb: "run", Bundle: cwd, ContainerID: "id4"}},
		{"relative bundle", "run --bundle rel id5", Args{Verb: "run", Bundle: cwd + "/rel", ContainerID: "id5"}},
		{"bools and rootless", "--debug --rootless true --criu /usr/sbin/criu create --no-pivot --console-socket /s --preserve-fds 2 -b /b id6",
			Args{Verb: "create", Bundle: "/b", ContainerID: "id6", Debug: true}},
		{"debug=false", "--debug=false state x", Args{Verb: "state"}},
		{"single-dash debug", "-debug=true kill x", Args{Verb: "kill", Debug: true}},
		{"id before flags", "create id7 --bundle /b", Args{Verb: "create", Bundle: "/b", ContainerID: "id7"}},
		{"double dash", "create --bundle /b -- -weird", Args{Verb: "create", Bundle: "/b", ContainerID: "-weird"}},
		{"other verb", "--root /r state abc", Args{Verb: "state", Root: "/r"}},
		{"delete with bundle-like flag", "delete --force abc", Args{Verb: "delete", ContainerID: "abc"}},
		{"delete short force", "--root /r delete -f -- x1", Args{Verb: "delete", ContainerID: "x1", Root: "/r"}},
		{"features", "features", Args{Verb: "features"}},
		{"version only", "--version", Args{}},
		{"empty", "", Args{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv := strings.Fields(tt.argv)
			got, err := ParseArgs(argv, cwd)
			if err != nil {
				t.Fatalf("ParseArgs: %v", err)
			}
			if !reflect.DeepEqual(got.Argv, argv) {
				t.Errorf("Argv changed: %q", got.Argv)
			}
			got.Argv = nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, argv := range []string{"--root", "--log-format", "create --bundle", "run -b"} {
		if _, err := ParseArgs(strings.Fields(argv), "/"); err == nil {
			t.Errorf("%q: want an error", argv)
		}
	}
}

func TestFindRuntime(t *testing.T) {
	t.Setenv("PATH", "")
	got, err := FindRuntime([]string{"no-such-runtime", "sh"})
	if err != nil || !strings.HasSuffix(got, "/sh") {
		t.Fatalf("empty PATH: got %q, %v; want sh from the default path", got, err)
	}
	if _, err := FindRuntime([]string{"no-such-runtime"}); err == nil || !strings.Contains(err.Error(), "no-such-runtime") {
		t.Fatalf("want an error naming the runtimes tried, got %v", err)
	}
	if got, err := FindRuntime([]string{"/bin/true"}); err != nil || got != "/bin/true" {
		t.Fatalf("absolute path: %q %v", got, err)
	}
}

func TestForce(t *testing.T) {
	for argv, want := range map[string]bool{
		"delete abc": false, "delete --force abc": true, "delete -f abc": true,
		"delete --force=false abc": false, "--root /r delete abc": false, "kill --force abc": false,
	} {
		a, err := ParseArgs(strings.Fields(argv), "/")
		if err != nil || a.Force() != want {
			t.Errorf("%q: Force() = %v (%v), want %v", argv, a.Force(), err, want)
		}
	}
}
