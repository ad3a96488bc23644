// Command execonly is the benchmark baseline: a Go binary that does nothing
// but exec the program in $EXECONLY_TARGET with its own arguments.
package main

import (
	"os"
	"syscall"
)

func main() {
	target := os.Getenv("EXECONLY_TARGET")
	args := append([]string{target}, os.Args[1:]...)
	if err := syscall.Exec(target, args, os.Environ()); err != nil {
		os.Exit(127)
	}
}
