package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func init() {
	addCommand(func(stdout, stderr io.Writer) *cobra.Command {
		return &cobra.Command{
			Use:   "version",
			Short: "print nvbind's version",
			Args:  noArgs(stderr),
			Run:   func(*cobra.Command, []string) { fmt.Fprintln(stdout, "nvbind", version) },
		}
	})
}
