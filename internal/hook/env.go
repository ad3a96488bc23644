package hook

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// selfExe is the running binary, as the kernel knows it.
const selfExe = "/proc/self/exe"

// EnsureCleanEnv makes sure the hook runs with an empty environment. runc
// runs createContainer hooks from the container's init process, whose
// environment is the image's (LD_PRELOAD=..., LD_LIBRARY_PATH=..., GODEBUG=...):
// CVE-2025-23266 loaded a library from the image into a host-side hook that
// way. nvbind-hook is a static Go binary, so the dynamic loader never sees
// those variables; re-executing itself with nothing keeps them from the Go
// runtime too, and from anything the hook might ever start.
//
// With an empty environment it returns nil at once; otherwise it replaces
// the process and only returns on failure.
func EnsureCleanEnv() error {
	if len(os.Environ()) == 0 {
		return nil
	}
	err := unix.Exec(selfExe, os.Args, []string{})
	return fmt.Errorf("re-execute %s with an empty environment: %w", selfExe, err)
}
