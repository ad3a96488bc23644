package gpu

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// jitfail.go remembers, for a few seconds, that writing the just-in-time
// spec failed (a read-only or full spec dir), so that the creates that
// follow neither wait for the exclusive lock nor redo the failing write:
// they use a spec made in memory instead.

// JITFailureTTL is how long a failed write is remembered.
const JITFailureTTL = 10 * time.Second

func jitFailurePath(stateDir, jitPath string) string {
	sum := sha256.Sum256([]byte(jitPath))
	return filepath.Join(stateDir, "jit-failed-"+hex.EncodeToString(sum[:6]))
}

// CachedJITFailure returns the remembered failure to write jitPath, if one
// is younger than JITFailureTTL and was for the same driver and devices.
func CachedJITFailure(stateDir, jitPath, driverVersion, fingerprint string) error {
	if stateDir == "" {
		return nil
	}
	data, err := os.ReadFile(jitFailurePath(stateDir, jitPath))
	if err != nil {
		return nil
	}
	f := strings.SplitN(string(data), "\n", 4)
	if len(f) != 4 || f[1] != driverVersion || f[2] != fingerprint {
		return nil
	}
	at, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || time.Since(time.Unix(0, at)) > JITFailureTTL || time.Since(time.Unix(0, at)) < 0 {
		return nil
	}
	return fmt.Errorf("%s (remembered from %s ago)", f[3], time.Since(time.Unix(0, at)).Round(time.Millisecond))
}

// CacheJITFailure remembers that writing jitPath failed with err. It is
// best effort: state on tmpfs, no fsync.
func CacheJITFailure(stateDir, jitPath, driverVersion, fingerprint string, err error) {
	if stateDir == "" {
		return
	}
	if os.MkdirAll(stateDir, 0o755) != nil {
		return
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	data := fmt.Sprintf("%d\n%s\n%s\n%s", time.Now().UnixNano(), driverVersion, fingerprint, msg)
	path := jitFailurePath(stateDir, jitPath)
	tmp := fmt.Sprintf("%s.%d", path, os.Getpid())
	if os.WriteFile(tmp, []byte(data), 0o644) == nil && os.Rename(tmp, path) != nil {
		os.Remove(tmp)
	}
}

// ForgetJITFailure drops the remembered failure once a write succeeded.
func ForgetJITFailure(stateDir, jitPath string) {
	if stateDir != "" {
		os.Remove(jitFailurePath(stateDir, jitPath))
	}
}

// GenerateJIT makes the just-in-time spec in memory, from procfs alone,
// for when it cannot be written.
func GenerateJIT(opts GenerateOptions) ([]byte, error) {
	opts.NVML = nil
	if err := opts.check(); err != nil {
		return nil, err
	}
	inv, err := discoverProcfs(cleanRoot(opts.DriverRoot))
	if err != nil {
		return nil, err
	}
	return generateFor(inv, opts)
}
