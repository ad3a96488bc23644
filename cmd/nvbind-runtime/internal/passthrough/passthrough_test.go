package passthrough

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/configcore"
	"github.com/nvbind/nvbind/internal/handoff"
)

// envMain marks a run of this test binary as nvbind-runtime: init has
// either exec'd the runtime (a script that prints its argv) or left the
// call to "main", which here says so.
const envMain = "NVBIND_PASSTHROUGH_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envMain) == "1" {
		fmt.Printf("main")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

const (
	plainSpec   = `{"ociVersion":"1.2.0","process":{"env":["PATH=/bin"]}}`
	requestSpec = `{"ociVersion":"1.2.0","process":{"env":["NVIDIA_VISIBLE_DEVICES=0"]}}`
)

// TestInit runs this test binary as nvbind-runtime: which calls init hands
// to the runtime, and which it leaves to main.
func TestInit(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"runtime $*\"\n"
	runc, crun := filepath.Join(dir, "bin", "runc"), filepath.Join(dir, "crunbin", "crun")
	for _, p := range []string{runc, crun} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(script), 0o755)
	}
	bundle := filepath.Join(dir, "bundle")
	os.MkdirAll(bundle, 0o755)
	large := `{"ociVersion":"1.2.0","x":"` + strings.Repeat("a", 17<<20) + `"}`
	largeRequest := large[:len(large)-1] + `,"process":{"env":["NVIDIA_VISIBLE_DEVICES=0"]}}`
	runtimes := fmt.Sprintf("[runtime]\nruntimes = [%q]\nstate-dir = %q\n", runc, filepath.Join(dir, "state"))
	tests := []struct {
		name   string
		config string // "" for none
		spec   string // "" for none; "dir" for a directory
		argv   string
		path   string // PATH; "" for the test's
		fast   bool
	}{
		// Handed to the runtime by init.
		{"create", runtimes, plainSpec, "--root R create --bundle B id", "", true},
		{"create, globals", runtimes, plainSpec, "--root R --log B/log.json --log-format json --systemd-cgroup create --bundle B --pid-file B/pid id", "", true},
		{"run", runtimes, plainSpec, "--root R run -d --bundle B id", "", true},
		{"restore", runtimes, plainSpec, "--root R restore --bundle B id", "", true},
		{"create, no --root", runtimes, plainSpec, "create --bundle B id", "", true},
		{"no config.toml: runc on PATH", "", plainSpec, "--root R create --bundle B id", filepath.Dir(runc), true},
		{"crun", "[runtime]\nruntimes = [\"crun\"]\n", plainSpec, "--root R create --bundle B --config B/config.json id", filepath.Dir(crun), true},
		{"spec too large, no request", runtimes, large, "--root R create --bundle B id", "", true},
		{"log-level warn", runtimes + "log-level = \"WARN\"\n", plainSpec, "--root R create --bundle B id", "", true},

		// Left to main.
		{"request", runtimes, requestSpec, "--root R create --bundle B id", "", false},
		{"spec too large, request", runtimes, largeRequest, "--root R create --bundle B id", "", false},
		{"volume-mount list", runtimes, `{"mounts":[{"destination":"/var/run/nvidia-container-devices/0"}]}`, "--root R create --bundle B id", "", false},
		{"escaped letters", runtimes, `{"process":{"env":["\u004eVIDIA_VISIBLE_DEVICES=0"]}}`, "--root R create --bundle B id", "", false},
		{"policy annotation prefix", runtimes + "[policy]\nannotation-prefixes = [\"example.com/\"]\n", `{"annotations":{"example.com/gpu":"0"}}`, "--root R create --bundle B id", "", false},
		{"policy table, no request", runtimes + "[policy]\npreset = \"server\"\n", plainSpec, "--root R create --bundle B id", "", false},
		{"broken config.toml", runtimes + "[runtime\n", plainSpec, "--root R create --bundle B id", "", false},
		{"invalid config.toml", runtimes + "log-level = \"loud\"\n", plainSpec, "--root R create --bundle B id", "", false},
		{"log-level debug", runtimes + "log-level = \"Debug\"\n", plainSpec, "--root R create --bundle B id", "", false},
		{"log-level trace", runtimes + "log-level = \"trace\"\n", plainSpec, "--root R create --bundle B id", "", false},
		{"--debug", runtimes, plainSpec, "--root R --debug create --bundle B id", "", false},
		{"no spec", runtimes, "", "--root R create --bundle B id", "", false},
		{"spec is a directory", runtimes, "dir", "--root R create --bundle B id", "", false},
		{"empty spec", runtimes, " ", "--root R create --bundle B id", "", true},
		{"unknown flag", runtimes, plainSpec, "--root R create --bogus --bundle B id", "", false},
		{"unknown global flag", runtimes, plainSpec, "--log-level debug create --bundle B id", "", false},
		{"runc refuses the order", runtimes, plainSpec, "--root R create --no-pivot id --bundle B", "", false},
		{"help", runtimes, plainSpec, "create --help", "", false},
		{"no runtime", "[runtime]\nruntimes = [\"/nonexistent/runc\"]\n", plainSpec, "--root R create --bundle B id", "", false},
		{"runtime through a relative PATH entry", "[runtime]\nruntimes = [\"runc\"]\n", plainSpec, "--root R create --bundle B id", "bin", false},
		{"state", runtimes, plainSpec, "--root R state id", "", false},
		{"delete", runtimes, plainSpec, "--root R delete --force id", "", false},
		{"kill", runtimes, plainSpec, "--root R kill id KILL", "", false},
		{"version", runtimes, plainSpec, "--version", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(filepath.Join(bundle, "config.json"))
			switch tt.spec {
			case "":
			case "dir":
				os.Mkdir(filepath.Join(bundle, "config.json"), 0o755)
			default:
				os.WriteFile(filepath.Join(bundle, "config.json"), []byte(tt.spec), 0o644)
			}
			root := filepath.Join(t.TempDir(), "root")
			cfg := filepath.Join(t.TempDir(), "config.toml")
			if tt.config != "" {
				os.WriteFile(cfg, []byte(tt.config), 0o644)
			}
			argv := strings.Fields(strings.NewReplacer("R", root, "B", bundle).Replace(tt.argv))
			cmd := exec.Command(self, argv...)
			cmd.Dir = dir
			path := tt.path
			if path == "" {
				path = os.Getenv("PATH")
			}
			cmd.Env = []string{envMain + "=1", "NVBIND_CONFIG=" + cfg, "PATH=" + path}
			var out, errs bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errs
			err := cmd.Run()
			fast := err == nil && out.String() == "runtime "+strings.Join(argv, " ")+"\n"
			if !fast && (out.String() != "main" || errs.Len() > 0) {
				t.Fatalf("neither the runtime nor main: %v, stdout %q, stderr %q", err, out.String(), errs.String())
			}
			if fast != tt.fast {
				t.Fatalf("handed to the runtime in init: %v, want %v (stdout %q)", fast, tt.fast, out.String())
			}
			// The runtime that created the container is recorded, as main
			// records it, before the runtime runs.
			if tt.fast && strings.Contains(tt.argv, "--root") {
				if got, err := os.Readlink(filepath.Join(root, ".nvbind-runtime.id")); err != nil || filepath.Base(got) != filepath.Base(runtimeOf(tt.config)) {
					t.Errorf("record: %q %v", got, err)
				}
			}
			if tt.fast && !strings.Contains(tt.argv, "--root") {
				if _, err := os.Readlink(filepath.Join(dir, "state", "runtimes", "id")); err != nil {
					t.Errorf("record under state-dir: %v", err)
				}
			}
		})
	}
}

func runtimeOf(config string) string {
	if strings.Contains(config, "crun") {
		return "crun"
	}
	return "runc"
}

// TestBegin: the Plan init makes is the one main would make, or is marked
// incomplete where init cannot tell.
func TestBegin(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "b")
	os.MkdirAll(bundle, 0o755)
	os.WriteFile(filepath.Join(bundle, "config.json"), []byte(plainSpec), 0o644)
	cfg := filepath.Join(dir, "config.toml")
	t.Setenv("NVBIND_CONFIG", cfg)
	full := Deps{Parse: config.Parse, LookPath: exec.LookPath}
	argv := []string{"--root", filepath.Join(dir, "root"), "create", "--bundle", bundle, "id"}
	for _, tt := range []struct {
		name, config string
		complete     bool
	}{
		{"usual", "[runtime]\nruntimes = [\"/bin/true\"]\n", true},
		{"policy", "[runtime]\nruntimes = [\"/bin/true\"]\n[policy]\npreset = \"server\"\n", false},
		{"profiles", "[runtime]\nruntimes = [\"/bin/true\"]\n[profiles.x]\ndescription = \"x\"\n", false},
		{"broken", "[runtime\n", false}, // the decoder words the error
		{"invalid", "[runtime]\nlog-level = \"loud\"\n", true},
	} {
		os.WriteFile(cfg, []byte(tt.config), 0o644)
		light, want := Begin(argv, Deps{}), Begin(argv, full)
		if light.complete() != tt.complete {
			t.Errorf("%s: complete %v, want %v (%v, %v)", tt.name, light.complete(), tt.complete, light.CfgErr, light.RtErr)
		}
		if !tt.complete {
			if !errors.Is(light.CfgErr, configcore.ErrNeedsDecoder) || errors.Is(want.CfgErr, configcore.ErrNeedsDecoder) {
				t.Errorf("%s: light %v, full %v", tt.name, light.CfgErr, want.CfgErr)
			}
			continue
		}
		if fmt.Sprintf("%+v %v %v %v %+v", *light.Cfg, light.CfgErr, light.Runtime, light.RtErr, *light.Args) !=
			fmt.Sprintf("%+v %v %v %v %+v", *want.Cfg, want.CfgErr, want.Runtime, want.RtErr, *want.Args) ||
			string(light.Spec) != string(want.Spec) || light.NoRequest != want.NoRequest || light.Level != want.Level {
			t.Errorf("%s: light plan %+v, full %+v", tt.name, light, want)
		}
	}
	// A runtime found through a relative PATH entry.
	os.WriteFile(cfg, []byte("[runtime]\nruntimes = [\"true\"]\n"), 0o644)
	t.Chdir("/")
	t.Setenv("PATH", "bin")
	if p := Begin(argv, Deps{}); p.complete() || !errors.Is(p.RtErr, handoff.ErrUnsure) {
		t.Errorf("relative PATH: complete %v, %v", p.complete(), p.RtErr)
	}
}
