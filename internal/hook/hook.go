package hook

import (
	"fmt"
	"io"
)

// Hook runs the hook subcommands against one container rootfs.
type Hook struct {
	Root *Root
	// Warn receives one line per thing skipped that is not an error;
	// nil drops them.
	Warn io.Writer
}

func (h *Hook) warnf(format string, args ...any) {
	if h.Warn != nil {
		fmt.Fprintf(h.Warn, "nvbind-hook: warning: "+format+"\n", args...)
	}
}
