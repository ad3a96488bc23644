package gpu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/nvbind/nvbind/internal/atomicfile"
)

// jit.go makes the just-in-time spec the runtime uses when no spec on disk
// serves a request or the spec on disk was made for another driver.

// WriteJITSpec makes sure path holds a spec for the running driver. It
// takes an exclusive flock on a lock file beside path; once it holds the
// lock it checks the file again, so of several concurrent creates only the
// first regenerates and the others find the fresh file. Discovery is
// procfs only (never NVML). The spec is validated before the atomic write.
func WriteJITSpec(path string, opts GenerateOptions) error {
	opts.NVML = nil
	if err := opts.check(); err != nil {
		return err
	}
	root := cleanRoot(opts.DriverRoot)
	current, err := ReadDriverVersion(root)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("jit spec: %w", err)
	}
	unlock, err := lock(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	fingerprint, _ := DeviceFingerprint(root)
	if data, err := os.ReadFile(path); err == nil && specBytesDriverVersion(data) == current &&
		specBytesEnv(data, DevicesEnv) == fingerprint {
		return nil
	}
	inv, err := discoverLocal(root)
	if err != nil {
		return err
	}
	data, err := generateFor(inv, opts)
	if err != nil {
		return err
	}
	jitWrites.Add(1)
	return atomicfile.Write(path, data, 0o644)
}

// jitWrites counts regenerations, for tests of concurrent creates.
var jitWrites atomic.Int64

// lock takes an exclusive flock on path (created if missing) and returns
// the function that releases it.
func lock(path string) (func(), error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("jit spec lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("jit spec lock %s: %w", path, err)
	}
	return func() { unix.Close(fd) }, nil
}

// SpecFileDriverVersion returns the driver version recorded in an nvbind
// spec file ("" when none is recorded) without decoding the whole spec: it
// scans for the NVBIND_DRIVER_VERSION entry, which nvbind writes in both
// YAML and JSON as one token. The runtime calls it before every GPU create.
func SpecFileDriverVersion(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return specBytesDriverVersion(data), nil
}

func specBytesDriverVersion(data []byte) string { return specBytesEnv(data, DriverVersionEnv) }

// WriteSpecFile writes spec bytes to path atomically, under the same lock
// WriteJITSpec takes, so `nvbind cdi generate` and a concurrent create never
// interleave.
func WriteSpecFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	unlock, err := lock(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	return atomicfile.Write(path, data, 0o644)
}
