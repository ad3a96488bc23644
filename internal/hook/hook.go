package hook

import (
	"fmt"
	"io"
	"path"
)

// Hook runs the hook subcommands against one container rootfs.
type Hook struct {
	Root *Root
	// Warn receives one line per thing skipped that is not an error;
	// nil drops them.
	Warn io.Writer
	// Pending are the files the runtime will bind-mount into the
	// container after this work is done, when it is done before the
	// runtime starts (internal/hookfold): clean container path -> host
	// path. UpdateLDCache lists each in its folder as the regular file the
	// mount will put there, read from the host.
	Pending map[string]string
}

// pendingIn returns the names the runtime will mount into dir.
func (h *Hook) pendingIn(dir string) []string {
	var names []string
	for p := range h.Pending {
		if path.Dir(p) == dir {
			names = append(names, path.Base(p))
		}
	}
	return names
}

func (h *Hook) warnf(format string, args ...any) {
	if h.Warn != nil {
		fmt.Fprintf(h.Warn, "nvbind-hook: warning: "+format+"\n", args...)
	}
}
