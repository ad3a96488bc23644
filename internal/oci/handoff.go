package oci

import (
	"os/exec"

	"github.com/nvbind/nvbind/internal/handoff"
)

// The command line, the runtime and the spec's bytes are internal/handoff's
// (light enough for nvbind-runtime's package-init passthrough); these
// names keep the rest of nvbind reading them from oci.

type (
	Args     = handoff.Args
	ArgError = handoff.ArgError
	Flavour  = handoff.Flavour
)

const (
	Runc     = handoff.Runc
	Crun     = handoff.Crun
	SpecFile = handoff.SpecFile
)

// ErrTooLarge marks a spec over the size nvbind reads into memory.
var ErrTooLarge = handoff.ErrTooLarge

// ParseArgs is handoff.ParseArgs.
func ParseArgs(argv []string, cwd string, fl Flavour) (*Args, error) {
	return handoff.ParseArgs(argv, cwd, fl)
}

// FlavourOf is handoff.FlavourOf.
func FlavourOf(runtime string) Flavour { return handoff.FlavourOf(runtime) }

// MentionsIntercept is handoff.MentionsIntercept.
func MentionsIntercept(argv []string) bool { return handoff.MentionsIntercept(argv) }

// FindRuntime is handoff.FindRuntime with os/exec's LookPath.
func FindRuntime(names []string) (string, error) { return handoff.FindRuntime(names, exec.LookPath) }

// RecordRuntime is handoff.RecordRuntime.
func RecordRuntime(a *Args, runtime string) error { return handoff.RecordRuntime(a, runtime) }

// RecordedRuntime is handoff.RecordedRuntime.
func RecordedRuntime(a *Args) (string, bool) { return handoff.RecordedRuntime(a) }

// ForgetRuntime is handoff.ForgetRuntime.
func ForgetRuntime(a *Args) { handoff.ForgetRuntime(a) }

// Exec is handoff.Exec.
func Exec(runtime string, argv []string) error { return handoff.Exec(runtime, argv) }

// ReadSpec is handoff.ReadSpec.
func ReadSpec(path string) ([]byte, error) { return handoff.ReadSpec(path) }

// FileMayRequest is handoff.FileMayRequest.
func FileMayRequest(path string, prefixes []string) (bool, error) {
	return handoff.FileMayRequest(path, prefixes)
}
