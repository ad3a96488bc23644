package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nvbind/nvbind/internal/config"
)

// configcmd.go: `nvbind config show|check`, the effective configuration
// and a validator for a config file before it goes live.

func init() { addCommand(newConfigCmd) }

func newConfigCmd(stdout, stderr io.Writer) *cobra.Command {
	var showJSON bool
	show := &cobra.Command{
		Use:   "show",
		Short: "print the effective configuration, each value with its source",
		Long: `Prints every configuration key with the value nvbind uses and where it
comes from: "built-in" (the default) or "file" (with its line). The file is
` + config.DefaultPath + `, or the one named by $` + config.EnvPath + `.`,
		Args: noArgs(stderr),
		RunE: func(*cobra.Command, []string) error { return code(configShow(showJSON, stdout, stderr)) },
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")
	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "validate a config file: exit 0 when nvbind would accept it, 1 with each error",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return exitCode(failTo(stderr, 2, "config check: unexpected argument %q", args[1]))
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error { return code(configCheck(args, stdout, stderr)) },
	}
	return group("config", "show the effective configuration, check a config file", stdout, stderr, show, check)
}

// configReport is `nvbind config show --json`.
type configReport struct {
	File string `json:"file"`
	// FileFrom says how the file was chosen: "default" or "env NVBIND_CONFIG".
	FileFrom string `json:"fileFrom"`
	Found    bool   `json:"found"`
	// HookPath is where hook.path resolves (its "" means beside nvbind).
	HookPath string           `json:"hookPath"`
	Settings []config.Setting `json:"settings"`
}

func configShow(asJSON bool, stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		return failTo(stderr, 1, "config show: %v", err)
	}
	r := configReport{File: config.Path(), FileFrom: "default", Found: cfg.Path != "", HookPath: cfg.HookPath()}
	if os.Getenv(config.EnvPath) != "" {
		r.FileFrom = "env " + config.EnvPath
	}
	var data []byte
	if r.Found {
		if data, err = os.ReadFile(cfg.Path); err != nil {
			return failTo(stderr, 1, "config show: %v", err)
		}
	}
	r.Settings = config.Settings(cfg, data)
	if asJSON {
		if err := writeJSON(stdout, r); err != nil {
			return failTo(stderr, 1, "config show: %v", err)
		}
		return 0
	}
	state := "found"
	if !r.Found {
		state = "not found: built-in defaults"
	}
	fmt.Fprintf(stdout, "# config file %s (%s; %s)\n", r.File, r.FileFrom, state)
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KEY\tVALUE\tSOURCE")
	for _, s := range r.Settings {
		src := s.Source
		if s.Line > 0 {
			src = fmt.Sprintf("file:%d", s.Line)
		}
		val := fmt.Sprintf("%q", s.Value)
		if _, ok := s.Value.(string); !ok {
			val = fmt.Sprint(s.Value)
		}
		if s.Key == "hook.path" && s.Value == "" {
			val = fmt.Sprintf("%q (resolves to %s)", "", r.HookPath)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", s.Key, val, src)
	}
	w.Flush()
	return 0
}

func configCheck(args []string, stdout, stderr io.Writer) int {
	path := config.Path()
	if len(args) == 1 {
		path = args[0]
	} else if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stdout, "%s: no file; nvbind uses the built-in defaults\n", path)
		return 0
	}
	errs := config.Check(path)
	for _, err := range errs {
		fmt.Fprintf(stderr, "nvbind: %v\n", err)
	}
	if len(errs) > 0 {
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}
