package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// allCommands walks the command tree.
func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

// TestHelpForEveryCommand: `nvbind help X` and `X --help` print a usage
// and exit 0 for every command in the tree.
func TestHelpForEveryCommand(t *testing.T) {
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb)
	for _, c := range allCommands(root) {
		path := strings.Fields(c.CommandPath())[1:]
		if c.Hidden || c == root {
			continue
		}
		for _, args := range [][]string{append([]string{"help"}, path...), append(append([]string{}, path...), "--help")} {
			var o, e bytes.Buffer
			code := execute(args, &o, &e)
			help := strings.ToLower(o.String() + e.String())
			if code != 0 || !strings.Contains(help, "usage") {
				t.Errorf("nvbind %s: exit %d, no usage:\n%s", strings.Join(args, " "), code, help)
			}
		}
	}
}

func TestRootDispatch(t *testing.T) {
	for _, tt := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{nil, 2, "", "Available Commands"},
		{[]string{"--version"}, 0, "nvbind " + version, ""},
		{[]string{"version"}, 0, "nvbind " + version, ""},
		{[]string{"frobnicate"}, 2, "", `nvbind: unknown command "frobnicate" (run 'nvbind --help')`},
		{[]string{"info", "--bogus"}, 2, "", "nvbind: info: flag provided but not defined: --bogus (see --help)"},
		{[]string{"profile", "list", "-json", "--bogus"}, 2, "", "flag provided but not defined"},
		{[]string{"config", "nope"}, 2, "", `config: unknown subcommand "nope" (valid: show, check)`},
	} {
		var o, e bytes.Buffer
		code := execute(tt.args, &o, &e)
		if code != tt.code || !strings.Contains(o.String(), tt.stdout) || !strings.Contains(e.String(), tt.stderr) {
			t.Errorf("%v: exit %d\nstdout %q\nstderr %q", tt.args, code, o.String(), e.String())
		}
	}
	// Go-style single-dash long flags, as the flag-package CLI took them.
	var o, e bytes.Buffer
	if code := execute([]string{"profile", "list", "-json"}, &o, &e); code != 0 || !strings.HasPrefix(strings.TrimSpace(o.String()), "[") {
		t.Errorf("profile list -json: %d %s %s", code, o.String(), e.String())
	}
}

// TestCompletionsAndManPages: each shell's completion script is produced;
// bash loads its own and completes subcommands; the man pages render.
func TestCompletionsAndManPages(t *testing.T) {
	dir := t.TempDir()
	for _, sh := range []string{"bash", "zsh", "fish"} {
		var o, e bytes.Buffer
		if code := execute([]string{"completion", sh}, &o, &e); code != 0 || o.Len() < 500 {
			t.Fatalf("completion %s: %d %s", sh, code, e.String())
		}
		os.WriteFile(filepath.Join(dir, sh), o.Bytes(), 0o644)
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		out, err := exec.Command(bash, "-c", "source "+filepath.Join(dir, "bash")+" && complete -p nvbind").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "nvbind") {
			t.Errorf("bash completion: %v %s", err, out)
		}
	}
	// Cobra's dynamic completion: the subcommands of `nvbind cdi`.
	var o, e bytes.Buffer
	execute([]string{"__complete", "cdi", ""}, &o, &e)
	if !strings.Contains(o.String(), "generate") || !strings.Contains(o.String(), "list") {
		t.Errorf("__complete cdi: %s", o.String())
	}
	o.Reset()
	execute([]string{"__complete", "runtime", "configure", "--runtime", ""}, &o, &e)
	if !strings.Contains(o.String(), "containerd") {
		t.Errorf("__complete --runtime: %s", o.String())
	}

	man := filepath.Join(dir, "man")
	if code := execute([]string{"man", "--dir", man}, &o, &e); code != 0 {
		t.Fatalf("man: %s", e.String())
	}
	for _, page := range []string{"nvbind.1", "nvbind-cdi-generate.1", "nvbind-run.1", "nvbind-config-show.1", "nvbind-recipe.1"} {
		data, err := os.ReadFile(filepath.Join(man, page))
		if err != nil || !bytes.Contains(data, []byte(".TH")) {
			t.Errorf("man page %s: %v", page, err)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(man, "nvbind-cdi-generate.1")); !bytes.Contains(data, []byte("device-name-strategy")) {
		t.Error("nvbind-cdi-generate.1 does not document its flags")
	}
}
