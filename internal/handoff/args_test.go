package handoff

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	const cwd = "/run/cwd"
	tests := []struct {
		name string
		fl   Flavour
		argv string
		want Args
	}{
		{"docker shim", Runc, "--root /run/docker/runtime-runc/moby --log /b/log.json --log-format json create --bundle /b --pid-file /b/init.pid abc",
			Args{Verb: "create", LogPath: "/b/log.json", LogFormat: "json", Root: "/run/docker/runtime-runc/moby", Bundle: "/b", Config: "/b/config.json", ContainerID: "abc"}},
		{"equals forms", Runc, "--root=/r --log=/l --log-format=text --systemd-cgroup create --bundle=/b id1",
			Args{Verb: "create", LogPath: "/l", LogFormat: "text", Root: "/r", Bundle: "/b", Config: "/b/config.json", ContainerID: "id1"}},
		{"single dash", Runc, "-root /r -log /l create -b /b id2",
			Args{Verb: "create", LogPath: "/l", Root: "/r", Bundle: "/b", Config: "/b/config.json", ContainerID: "id2"}},
		{"short bundle", Runc, "create -b /bb id3", Args{Verb: "create", Bundle: "/bb", Config: "/bb/config.json", ContainerID: "id3"}},
		{"no bundle uses cwd", Runc, "run --detach id4", Args{Verb: "run", Bundle: cwd, Config: cwd + "/config.json", ContainerID: "id4"}},
		{"relative bundle", Runc, "run --bundle rel id5", Args{Verb: "run", Bundle: cwd + "/rel", Config: cwd + "/rel/config.json", ContainerID: "id5"}},
		{"bools and rootless", Runc, "--debug --rootless true --criu /usr/sbin/criu create --no-pivot --console-socket /s --preserve-fds 2 -b /b id6",
			Args{Verb: "create", Bundle: "/b", Config: "/b/config.json", ContainerID: "id6", Debug: true}},
		{"debug=false", Runc, "--debug=false state x", Args{Verb: "state", ContainerID: "x"}},
		{"debug=TRUE", Runc, "--debug=TRUE state x", Args{Verb: "state", ContainerID: "x", Debug: true}},
		{"debug=t", Runc, "--debug=t create id", Args{Verb: "create", Bundle: cwd, Config: cwd + "/config.json", ContainerID: "id", Debug: true}},
		{"single-dash debug", Runc, "-debug=true kill x", Args{Verb: "kill", Debug: true, ContainerID: "x"}},
		{"id before flags (urfave/cli reorders)", Runc, "create id7 --bundle /b", Args{Verb: "create", Bundle: "/b", Config: "/b/config.json", ContainerID: "id7"}},
		{"bool flag with =value", Runc, "create --no-pivot=1 -b /b id", Args{Verb: "create", Bundle: "/b", Config: "/b/config.json", ContainerID: "id"}},
		{"double dash", Runc, "create --bundle /b -- -weird", Args{Verb: "create", Bundle: "/b", Config: "/b/config.json", ContainerID: "-weird"}},
		{"restore", Runc, "restore --image-path /img --tcp-established -b /b id8", Args{Verb: "restore", Bundle: "/b", Config: "/b/config.json", ContainerID: "id8"}},
		{"create help", Runc, "create --help", Args{Verb: "create", Help: true}},
		{"other verb", Runc, "--root /r state abc", Args{Verb: "state", Root: "/r", ContainerID: "abc"}},
		{"delete force", Runc, "delete --force abc", Args{Verb: "delete", ContainerID: "abc", force: true}},
		{"unknown verb flags left alone", Runc, "exec --tty --bogus abc sh", Args{Verb: "exec"}},
		{"features", Runc, "features", Args{Verb: "features"}},
		{"version only", Runc, "--version", Args{}},
		{"empty", Runc, "", Args{}},
		{"crun globals", Crun, "--cgroup-manager systemd --log-level=debug --root /r create --bundle /b id", Args{Verb: "create", Root: "/r", Bundle: "/b", Config: "/b/config.json", ContainerID: "id"}},
		{"crun --config absolute", Crun, "create --config /etc/x.json -b /b id", Args{Verb: "create", Bundle: "/b", Config: "/etc/x.json", ContainerID: "id"}},
		{"crun -f relative to cwd", Crun, "create -f my.json -b /b id", Args{Verb: "create", Bundle: "/b", Config: cwd + "/my.json", ContainerID: "id"}},
		{"crun -f config.json is the bundle's", Crun, "create -fconfig.json -b/b id", Args{Verb: "create", Bundle: "/b", Config: "/b/config.json", ContainerID: "id"}},
		{"crun grouped shorts", Crun, "run -db /b id", Args{Verb: "run", Bundle: "/b", Config: "/b/config.json", ContainerID: "id"}},
		{"crun restore", Crun, "restore --image-path /i -b /b id", Args{Verb: "restore", Bundle: "/b", Config: "/b/config.json", ContainerID: "id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv := strings.Fields(tt.argv)
			got, err := ParseArgs(argv, cwd, tt.fl)
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

// TestParseArgsRefuses: a create the runtime would parse differently from
// nvbind, or refuse, is an error naming the flag at fault.
func TestParseArgsRefuses(t *testing.T) {
	tests := []struct {
		fl         Flavour
		argv, want string
	}{
		{Runc, "--root", "flag --root: needs a value"},
		{Runc, "create --bundle", "flag --bundle: needs a value"},
		{Runc, "run -b", "flag -b: needs a value"},
		{Runc, "--log-level debug create --bundle /b id", "flag --log-level: not a flag"},
		{Crun, "--log-level create --bundle /b id", "flag --bundle: not a flag"},
		{Runc, "--cgroup-manager systemd create --bundle /b id", "flag --cgroup-manager: not a flag"},
		{Runc, "--debug=yes create id", `flag --debug=yes: invalid boolean "yes"`},
		{Runc, "create --no-pivot ctr --bundle /b", "create: flag --bundle after the container ID"},
		{Runc, "create --bogus -b /b id", "flag --bogus: not a flag"},
		{Runc, "create -b /a --bundle /b id", "given as both --bundle and -b"},
		{Runc, "create --preserve-fds x id", `invalid number "x"`},
		{Runc, "create", "create needs exactly one container ID, got 0"},
		{Runc, "run a b", "run needs exactly one container ID, got 2"},
		{Crun, "create --no-pivot=1 id", "flag --no-pivot=1: takes no value"},
		{Crun, "create --bund /b id", "flag --bund: not a flag"},
		{Crun, "create id --bundle /b", "create: flag --bundle after the container ID"},
		{Runc, "create ---x id", "bad flag syntax"},
	}
	for _, tt := range tests {
		_, err := ParseArgs(strings.Fields(tt.argv), "/", tt.fl)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %q: got %v, want an error containing %q", tt.fl, tt.argv, err, tt.want)
		}
	}
	// An empty ID (found by FuzzParseArgs): both runtimes refuse it.
	for _, fl := range []Flavour{Runc, Crun} {
		for _, argv := range [][]string{{"create", ""}, {"run", "-b", "/b", ""}, {"create", "--bundle", "/b", "--", ""}} {
			if _, err := ParseArgs(argv, "/", fl); err == nil || !strings.Contains(err.Error(), "empty container ID") {
				t.Errorf("%s %q: got %v, want an empty container ID error", fl, argv, err)
			}
		}
	}
}

func TestRecordRuntime(t *testing.T) {
	root := t.TempDir()
	a := &Args{Root: root, ContainerID: "c1"}
	if _, ok := RecordedRuntime(a); ok {
		t.Fatal("a record before any create")
	}
	if err := RecordRuntime(a, "/bin/true"); err != nil {
		t.Fatal(err)
	}
	if got, ok := RecordedRuntime(a); !ok || got != "/bin/true" {
		t.Fatalf("recorded %q %v", got, ok)
	}
	for _, id := range []string{"", "..", "a/b"} {
		if err := RecordRuntime(&Args{Root: root, ContainerID: id}, "/bin/true"); err != nil {
			t.Fatal(err)
		}
	}
	ForgetRuntime(a)
	if _, ok := RecordedRuntime(a); ok {
		t.Fatal("record survives delete")
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("left in the runtime root: %v", entries)
	}
}

func TestFindRuntime(t *testing.T) {
	for _, look := range []func(string) (string, error){nil, exec.LookPath} {
		t.Setenv("PATH", "")
		got, err := FindRuntime([]string{"no-such-runtime", "sh"}, look)
		if err != nil || !strings.HasSuffix(got, "/sh") {
			t.Fatalf("empty PATH: got %q, %v; want sh from the default path", got, err)
		}
		if _, err := FindRuntime([]string{"no-such-runtime"}, look); err == nil || !strings.Contains(err.Error(), "no-such-runtime") {
			t.Fatalf("want an error naming the runtimes tried, got %v", err)
		}
		if got, err := FindRuntime([]string{"/bin/true"}, look); err != nil || got != "/bin/true" {
			t.Fatalf("absolute path: %q %v", got, err)
		}
		// Never this very program: a list that names it cannot loop.
		self, _ := os.Executable()
		if got, err := FindRuntime([]string{self, "/bin/true"}, look); err != nil || got != "/bin/true" {
			t.Fatalf("self first: %q %v, want /bin/true", got, err)
		}
		t.Setenv("PATH", filepath.Dir(self))
		if got, err := FindRuntime([]string{filepath.Base(self), "/bin/true"}, look); err != nil || got != "/bin/true" {
			t.Fatalf("self through PATH: %q %v, want /bin/true", got, err)
		}
		t.Setenv("PATH", "/nonexistent:/usr/bin:/bin")
		if got, err := FindRuntime([]string{"true"}, look); err != nil || !strings.HasSuffix(got, "/true") || !filepath.IsAbs(got) {
			t.Fatalf("through PATH: %q %v", got, err)
		}
	}
	// A runtime found through a relative PATH entry: os/exec's answer
	// depends on GODEBUG, so the light lookup says it cannot tell.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rt"), []byte("#!/bin/sh\n"), 0o755)
	t.Chdir(dir)
	t.Setenv("PATH", "/nonexistent::/bin")
	if _, err := FindRuntime([]string{"rt"}, nil); !errors.Is(err, ErrUnsure) {
		t.Fatalf("relative PATH entry: %v, want ErrUnsure", err)
	}
	if got, err := FindRuntime([]string{"rt", "true"}, exec.LookPath); err != nil || got != "/bin/true" {
		t.Fatalf("relative PATH entry with os/exec: %q %v, want it skipped", got, err)
	}
}

// TestLookPath: LookPath answers as os/exec's LookPath does, but where
// that depends on GODEBUG.
func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"exe": 0o755, "noexec": 0o644} {
		os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode)
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "exe"), []byte("#!/bin/sh\n"), 0o755)
	os.Mkdir(filepath.Join(dir, "adir"), 0o755)
	t.Chdir(dir)
	tests := []struct{ path, file string }{
		{dir, "exe"}, {dir, "noexec"}, {dir, "adir"}, {dir, "missing"},
		{dir + ":/bin", "true"}, {"/nonexistent:" + dir, "exe"}, {dir + "/", "exe"},
		{"/bin", ""}, {"/bin", "."}, {"/bin", ".."}, {dir, "sub/exe"}, {dir, "./exe"}, {dir, dir + "/exe"},
		{dir, "./noexec"}, {dir, "adir/"}, {"", "exe"}, {":", "true"},
	}
	for _, tt := range tests {
		t.Setenv("PATH", tt.path)
		got, err := LookPath(tt.file)
		want, werr := exec.LookPath(tt.file)
		if got != want || (err == nil) != (werr == nil) {
			t.Errorf("PATH=%s LookPath(%q) = %q, %v; os/exec: %q, %v", tt.path, tt.file, got, err, want, werr)
		}
	}
	// Found through a relative entry: os/exec reports ErrDot (or takes it
	// with GODEBUG=execerrdot=0); LookPath cannot tell.
	for _, p := range []string{".", "sub", ":/bin", "/nonexistent:"} {
		t.Setenv("PATH", p)
		if _, err := LookPath("exe"); !errors.Is(err, ErrUnsure) {
			t.Errorf("PATH=%s: %v, want ErrUnsure", p, err)
		}
	}
}

func TestForce(t *testing.T) {
	for argv, want := range map[string]bool{
		"delete abc": false, "delete --force abc": true, "delete -f abc": true, "delete -force abc": true,
		"delete --force=false abc": false, "--root /r delete abc": false, "kill --force abc": false,
		"delete abc --force": true, // urfave/cli reorders flags after the ID
	} {
		for _, fl := range []Flavour{Runc, Crun} {
			if fl == Crun && (argv == "delete -force abc" || argv == "delete abc --force" || argv == "delete --force=false abc") {
				continue // runc's Go-flag forms
			}
			a, err := ParseArgs(strings.Fields(argv), "/", fl)
			if err != nil || a.Force() != want || (a.Verb == "delete" && a.ContainerID != "abc") {
				t.Errorf("%s %q: Force() = %v, id %q (%v), want %v", fl, argv, a.Force(), a.ContainerID, err, want)
			}
		}
	}
}
