package passthrough

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// envMain marks a run of this test binary as a hook: init has either
// answered (and exited) or left the call to "main", which here prints
// what it reads from Stdin.
const envMain = "NVBIND_PASSTHROUGH_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envMain) == "1" {
		data, err := io.ReadAll(Stdin())
		fmt.Printf("main:%s", data)
		if err != nil {
			fmt.Fprintf(os.Stderr, "read error: %v", err)
		}
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func TestPassthrough(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	plain := `{"ociVersion":"1.2.0","process":{"env":["PATH=/bin"]}}` + "\n"
	request := `{"ociVersion":"1.2.0","process":{"env":["NVIDIA_VISIBLE_DEVICES=0"]}}`
	large := `{"ociVersion":"1.2.0","x":"` + strings.Repeat("a", maxRead) + `"}`
	tests := []struct {
		name   string
		argv0  string
		args   []string
		stdin  string
		code   int
		stdout string
	}{
		// Answered in init: the spec back byte for byte.
		{"no request", "", []string{"precreate"}, plain, 0, plain},
		{"no request, --config", "", []string{"precreate", "--config", "/nonexistent.toml"}, plain, 0, plain},
		{"no request, --config=", "", []string{"precreate", "--config=/nonexistent.toml"}, plain, 0, plain},
		{"no request, -config", "", []string{"precreate", "-config", "/c.toml"}, plain, 0, plain},
		// Left to main, which reads the same bytes.
		{"request", "", []string{"precreate"}, request, 3, "main:" + request},
		{"empty", "", []string{"precreate"}, "", 3, "main:"},
		{"larger than init reads", "", []string{"precreate"}, large, 3, "main:" + large},
		{"unknown flag", "", []string{"precreate", "--bogus"}, plain, 3, "main:" + plain},
		{"extra argument", "", []string{"precreate", "--config", "/c.toml", "x"}, plain, 3, "main:" + plain},
		{"other subcommand", "", []string{"prestart"}, plain, 3, "main:" + plain},
		{"as nvidia-container-runtime-hook", "/usr/bin/nvidia-container-runtime-hook", []string{"precreate"}, plain, 3, "main:" + plain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(self, tt.args...)
			if tt.argv0 != "" {
				cmd.Args[0] = tt.argv0
			}
			cmd.Env = []string{envMain + "=1"}
			cmd.Stdin = strings.NewReader(tt.stdin)
			var out, errs bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errs
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || out.String() != tt.stdout || errs.Len() > 0 {
				t.Errorf("exit %d, stdout %.80q, stderr %q; want exit %d, stdout %.80q", code, out.String(), errs.String(), tt.code, tt.stdout)
			}
		})
	}
}

func TestPrecreateCall(t *testing.T) {
	tests := []struct {
		argv   []string
		want   bool
		config string
	}{
		{[]string{"nvbind-hook", "precreate"}, true, ""},
		{[]string{"/usr/bin/nvbind-hook", "precreate", "--config", "/c.toml"}, true, "/c.toml"},
		{[]string{"nvbind-hook", "precreate", "--config=/c.toml"}, true, "/c.toml"},
		{[]string{"nvbind-hook", "precreate", "-config=/c.toml"}, true, "/c.toml"},
		{[]string{"nvbind-hook"}, false, ""},
		{[]string{"nvbind-hook", "prestart"}, false, ""},
		{[]string{"nvbind-hook", "precreate", "--config"}, false, ""},
		{[]string{"nvbind-hook", "precreate", "-h"}, false, ""},
		{[]string{"nvbind-hook", "precreate", "--conf", "/c.toml"}, false, ""},
		{[]string{"nvbind-hook", "precreate", "--config", "/c.toml", "--config", "/d.toml"}, false, ""},
		{[]string{"nvidia-container-runtime-hook", "precreate"}, false, ""},
		{[]string{"/usr/bin/nvidia-container-runtime-hook", "precreate"}, false, ""},
	}
	for _, tt := range tests {
		if config, got := precreateCall(tt.argv); got != tt.want || config != tt.config {
			t.Errorf("precreateCall(%q) = %q, %v, want %q, %v", tt.argv, config, got, tt.config, tt.want)
		}
	}
}
