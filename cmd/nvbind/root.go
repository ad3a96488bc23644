package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// root.go: the cobra command tree. Each command file adds its command with
// addCommand, so adding one touches no other file.

// exitCode is returned by a command's RunE to end with that code after the
// command printed its own message.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// code turns a command's result into an error cobra carries back.
func code(c int) error {
	if c == 0 {
		return nil
	}
	return exitCode(c)
}

// builders make the top-level commands; a fresh tree is built per run so
// tests can run commands side by side.
var builders []func(io.Writer, io.Writer) *cobra.Command

// addCommand registers a native cobra command.
func addCommand(build func(stdout, stderr io.Writer) *cobra.Command) {
	builders = append(builders, build)
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "nvbind",
		Short: "GPU passthrough for Linux containers: GPU facts, CDI specs, engine wiring, profiles, cluster recipes",
		Long: `nvbind gives Linux containers NVIDIA GPUs. nvbind-runtime (a runc-compatible
OCI runtime shim) and nvbind-hook do the work in containers; this CLI shows
the host's GPUs, writes CDI specs, wires nvbind into Docker, containerd,
Podman and CRI-O, checks the setup, and prepares GPU clusters offline.`,
		Version:       version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				c.SetOut(stderr)
				c.Usage()
				return exitCode(2)
			}
			return unknownCommand(stderr, args[0])
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("nvbind {{.Version}}\n")
	root.SetFlagErrorFunc(flagError(stderr))
	for _, b := range builders {
		root.AddCommand(b(stdout, stderr))
	}
	sort.Slice(root.Commands(), func(i, j int) bool { return root.Commands()[i].Name() < root.Commands()[j].Name() })
	return root
}

// execute runs args through a fresh command tree and returns the exit
// code: 0, the command's own, 2 for a bad command line.
func execute(args []string, stdout, stderr io.Writer) int {
	return executeContext(context.Background(), args, stdout, stderr)
}

// executeContext is execute for a command that runs until ctx ends.
func executeContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(normalizeArgs(root, args))
	err := root.ExecuteContext(ctx)
	var ec exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return int(ec)
	default:
		// cobra's own errors: unknown flags on the root, bad values.
		return failTo(stderr, 2, "%v (run 'nvbind --help')", err)
	}
}

func unknownCommand(stderr io.Writer, name string) error {
	return exitCode(failTo(stderr, 2, "unknown command %q (run 'nvbind --help')", name))
}

// pflagInvalid is pflag's bad-value message, reworded as the flag
// package's ("invalid value "x" for flag --n: ...").
var pflagInvalid = regexp.MustCompile(`^invalid argument (".*") for "(-[^"]+)" flag: (.*)$`)

// flagError reports a bad flag as one line naming the command, exit 2.
func flagError(stderr io.Writer) func(*cobra.Command, error) error {
	return func(c *cobra.Command, err error) error {
		name := strings.TrimPrefix(c.CommandPath(), "nvbind ")
		msg := err.Error()
		// The wording of the flag-package CLI, which scripts may match.
		for _, p := range []string{"unknown flag: ", "unknown shorthand flag: "} {
			if rest, ok := strings.CutPrefix(msg, p); ok {
				msg = "flag provided but not defined: " + rest
			}
		}
		if m := pflagInvalid.FindStringSubmatch(msg); m != nil {
			msg = fmt.Sprintf("invalid value %s for flag %s: %s", m[1], m[2], m[3])
		}
		return exitCode(failTo(stderr, 2, "%s: %s (see --help)", name, msg))
	}
}

// group is a command that only holds subcommands: no argument prints the
// usage (exit 2), an unknown one is one error line naming the valid ones.
func group(use, short string, stdout, stderr io.Writer, subs ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs}
	names := make([]string, 0, len(subs))
	for _, s := range subs {
		names = append(names, s.Name())
	}
	g.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			fmt.Fprintf(stderr, "usage: nvbind %s %s [flags]\n\n", use, strings.Join(names, "|"))
			c.SetOut(stderr)
			c.Usage()
			return exitCode(2)
		}
		return exitCode(failTo(stderr, 2, "%s: unknown subcommand %q (valid: %s)", use, args[0], strings.Join(names, ", ")))
	}
	g.AddCommand(subs...)
	return g
}

// normalizeArgs turns Go-style single-dash long flags (-json, -o) into the
// forms pflag reads, so command lines written for the flag-package CLI
// keep working: "-json" becomes "--json" where the command has a long
// flag "json".
func normalizeArgs(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil || cmd.DisableFlagParsing {
		return args
	}
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		if a == "--" {
			break
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if f := cmd.Flags().Lookup(name); f != nil && len(name) > 1 {
			out[i] = "-" + a
		} else if f := cmd.InheritedFlags().Lookup(name); f != nil && len(name) > 1 {
			out[i] = "-" + a
		}
	}
	return out
}
