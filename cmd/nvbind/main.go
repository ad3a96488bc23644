// Command nvbind is the user CLI: GPU facts, CDI specs, engine wiring,
// profiles and the offline cluster recipe tools.
package main

import (
	"fmt"
	"os"
	"sort"
)

// command is one `nvbind <name>` subcommand. run gets the arguments after
// the name and returns the process exit code.
type command struct {
	summary string
	run     func(args []string) int
}

// commands is filled by each subcommand's file, so adding one touches no
// other file.
var commands = map[string]command{}

func register(name, summary string, run func(args []string) int) {
	commands[name] = command{summary: summary, run: run}
}

func main() {
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "version" {
		fmt.Println("nvbind", version)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "nvbind: unknown command %q (run 'nvbind --help')\n", args[0])
		return 2
	}
	return cmd.run(args[1:])
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: nvbind <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
}

// fail prints one error line and returns the exit code to use.
func fail(code int, format string, a ...any) int {
	return failTo(os.Stderr, code, format, a...)
}
