package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// man.go: `nvbind man --dir DIR` writes one man page per command (section
// 1) from the command tree itself, so pages and --help never disagree.
// Packaging runs it (make man); it is hidden from the help.

func init() {
	addCommand(func(stdout, stderr io.Writer) *cobra.Command {
		var dir string
		c := &cobra.Command{
			Use:    "man",
			Short:  "write the man pages (section 1) to a directory",
			Hidden: true,
			Args:   noArgs(stderr),
			RunE: func(c *cobra.Command, _ []string) error {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return exitCode(failTo(stderr, 1, "man: %v", err))
				}
				header := &doc.GenManHeader{Title: "NVBIND", Section: "1", Source: "nvbind " + version, Manual: "nvbind manual"}
				root := c.Root()
				root.DisableAutoGenTag = true
				if err := doc.GenManTree(root, header, dir); err != nil {
					return exitCode(failTo(stderr, 1, "man: %v", err))
				}
				fmt.Fprintf(stdout, "wrote man pages to %s\n", dir)
				return nil
			},
		}
		c.Flags().StringVar(&dir, "dir", "man", "directory to write the pages to")
		return c
	})
}
