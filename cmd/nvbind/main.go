// Command nvbind is the user CLI: GPU facts, CDI specs, engine wiring,
// profiles and the offline cluster recipe tools.
package main

import (
	"os"
)

func main() {
	os.Exit(dispatch(os.Args[1:]))
}

// dispatch runs one command line and returns the process exit code.
func dispatch(args []string) int {
	return execute(args, os.Stdout, os.Stderr)
}

// fail prints one error line and returns the exit code to use.
func fail(code int, format string, a ...any) int {
	return failTo(os.Stderr, code, format, a...)
}
