// Command execonlycdi is execonly linked with the CDI library that
// nvbind-runtime must use: the floor that library's package init (its YAML
// parser's and name validation's regexps) sets for any binary linking it.
package main

import (
	"os"
	"syscall"

	_ "tags.cncf.io/container-device-interface/pkg/cdi"
)

func main() {
	target := os.Getenv("EXECONLY_TARGET")
	args := append([]string{target}, os.Args[1:]...)
	if err := syscall.Exec(target, args, os.Environ()); err != nil {
		os.Exit(127)
	}
}
