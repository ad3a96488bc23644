package hook

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// selfExe is the running binary, as the kernel knows it.
const selfExe = "/proc/self/exe"

// Env is the environment nvbind's specs give their hooks. runc runs
// createContainer hooks with the hook's own env when it has one, and
// otherwise with an environment that may be the image's (LD_PRELOAD=...,
// GODEBUG=..., GOMAXPROCS=...): CVE-2025-23266 loaded a library from the
// image into a host-side hook that way. An explicit, minimal env keeps the
// image's variables from the hook's Go runtime from its first instruction.
var Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}

// EnsureCleanEnv makes sure the hook runs with no environment but Env's.
// Specs made by nvbind give their hooks Env, so it returns nil at once;
// under a spec made before they did, it re-executes the hook with an empty
// environment, keeping the image's variables from the Go runtime and from
// anything the hook might ever start. It only returns on failure then.
func EnsureCleanEnv() error {
	if cleanEnv(os.Environ()) {
		return nil
	}
	err := unix.Exec(selfExe, os.Args, []string{})
	return fmt.Errorf("re-execute %s with an empty environment: %w", selfExe, err)
}

// cleanEnv reports whether env holds nothing but Env's variables.
func cleanEnv(env []string) bool {
	for _, e := range env {
		name, _, _ := strings.Cut(e, "=")
		if name != "PATH" {
			return false
		}
	}
	return true
}
