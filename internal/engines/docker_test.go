package engines

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const rt = "/opt/nvbind/bin/nvbind-runtime"

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestDockerConfigure(t *testing.T) {
	tests := []struct {
		name string
		in   string // "" = no file
		opts Options
		want string
	}{
		{
			name: "no file",
			want: "{\n    \"runtimes\": {\n        \"nvbind\": {\n            \"path\": \"" + rt + "\"\n        }\n    }\n}\n",
		},
		{
			name: "keys and their order kept",
			in:   `{"log-driver":"local","runtimes":{"nvidia":{"path":"nvidia-container-runtime","runtimeArgs":[]}},"storage-driver":"overlay2"}`,
			want: `{
    "log-driver": "local",
    "runtimes": {
        "nvidia": {
            "path": "nvidia-container-runtime",
            "runtimeArgs": []
        },
        "nvbind": {
            "path": "` + rt + `"
        }
    },
    "storage-driver": "overlay2"
}
`,
		},
		{
			name: "default runtime and cdi",
			in:   `{"default-runtime":"runc","features":{"buildkit":true}}`,
			opts: Options{SetAsDefault: true, CDI: true},
			want: `{
    "default-runtime": "nvbind",
    "features": {
        "buildkit": true,
        "cdi": true
    },
    "runtimes": {
        "nvbind": {
            "path": "` + rt + `"
        }
    }
}
`,
		},
		{
			name: "old path replaced, runtimeArgs kept",
			in:   `{"runtimes":{"nvbind":{"path":"/old","runtimeArgs":["--debug"]}}}`,
			want: "{\n    \"runtimes\": {\n        \"nvbind\": {\n            \"path\": \"" + rt + "\",\n            \"runtimeArgs\": [\n                \"--debug\"\n            ]\n        }\n    }\n}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "daemon.json")
			if tt.in != "" {
				writeFile(t, path, tt.in)
			}
			opts := tt.opts
			opts.Engine, opts.ConfigPath, opts.RuntimePath = Docker, path, rt
			res, err := Configure(opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, path); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
			if !res.Changed {
				t.Error("first run reported no change")
			}
			if tt.in != "" && res.Backup == "" {
				t.Error("no backup made")
			}
			if tt.in != "" && readFile(t, path+".nvbind.bak") != tt.in {
				t.Error("backup is not the original")
			}
			// Idempotent: the second run changes nothing.
			res, err = Configure(opts)
			if err != nil || res.Changed {
				t.Fatalf("second run: changed=%v err=%v", res.Changed, err)
			}
		})
	}
}

func TestDockerUnconfigure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.json")
	orig := `{"runtimes":{"nvidia":{"path":"x"}},"default-runtime":"runc","features":{"cdi":true}}`
	writeFile(t, path, orig)
	opts := Options{Engine: Docker, ConfigPath: path, RuntimePath: rt, SetAsDefault: true}
	if _, err := Configure(opts); err != nil {
		t.Fatal(err)
	}
	if _, err := Unconfigure(Options{Engine: Docker, ConfigPath: path}); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, path)
	// nvidia's runtime and features.cdi were the user's: they stay. The
	// user's default-runtime was replaced by configure, so it is gone.
	want := "{\n    \"runtimes\": {\n        \"nvidia\": {\n            \"path\": \"x\"\n        }\n    },\n    \"features\": {\n        \"cdi\": true\n    }\n}\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if bak := readFile(t, path+".nvbind.bak"); bak != orig {
		t.Errorf("backup changed: %s", bak)
	}
	res, err := Unconfigure(Options{Engine: Docker, ConfigPath: path})
	if err != nil || res.Changed {
		t.Fatalf("second unconfigure: changed=%v err=%v", res.Changed, err)
	}
}

func TestDockerBadFileLeftAlone(t *testing.T) {
	for _, in := range []string{`{"runtimes": [}`, `[1,2]`, `{"runtimes": "x"}`, `{"a":1}{}`} {
		path := filepath.Join(t.TempDir(), "daemon.json")
		writeFile(t, path, in)
		_, err := Configure(Options{Engine: Docker, ConfigPath: path, RuntimePath: rt})
		var pe *ParseError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want a ParseError naming the file", in, err)
		}
		if got := readFile(t, path); got != in {
			t.Errorf("%s: file changed to %s", in, got)
		}
		if _, err := os.Stat(path + ".nvbind.bak"); err == nil {
			t.Errorf("%s: backup written for a file that was not changed", in)
		}
	}
}

func TestDryRunTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.json")
	writeFile(t, path, `{"debug":true}`)
	res, err := Configure(Options{Engine: Docker, ConfigPath: path, RuntimePath: rt, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || !strings.Contains(string(res.Content), rt) {
		t.Errorf("dry run result: changed=%v content=%s", res.Changed, res.Content)
	}
	if readFile(t, path) != `{"debug":true}` {
		t.Error("dry run changed the file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dry run left files: %v", entries)
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []Options{
		{Engine: "lxc"},
		{Engine: Podman, SetAsDefault: true},
		{Engine: Docker, RuntimePath: "nvbind-runtime"},
	}
	for _, o := range tests {
		if _, err := Configure(o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestDetectListsEveryEngine(t *testing.T) {
	got := Detect()
	if len(got) != len(Names) {
		t.Fatalf("Detect() = %d engines, want %d", len(got), len(Names))
	}
	for i, e := range got {
		if e.Name != Names[i] || e.ConfigPath == "" {
			t.Errorf("engine %d: %+v", i, e)
		}
		if e.Registered != (e.RuntimePath != "") {
			t.Errorf("%s: Registered=%v with runtime path %q", e.Name, e.Registered, e.RuntimePath)
		}
	}
}

func TestMajor(t *testing.T) {
	for v, want := range map[string]int{"1.6.20": 1, "2.0.0": 2, "": 0, "x": 0} {
		if got := major(v); got != want {
			t.Errorf("major(%q) = %d, want %d", v, got, want)
		}
	}
}
