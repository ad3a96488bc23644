package hook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// Bounds on the inputs the hook reads from the runtime.
const (
	maxStateSize  = 1 << 20
	maxConfigSize = 16 << 20
)

// ReadState decodes the OCI state the runtime writes on a hook's stdin.
func ReadState(r io.Reader) (*rspec.State, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("read container state from stdin: %w", err)
	}
	if len(data) > maxStateSize {
		return nil, fmt.Errorf("container state on stdin is larger than %d bytes", maxStateSize)
	}
	if len(data) == 0 {
		return nil, errors.New("no container state on stdin (nvbind-hook runs as an OCI hook)")
	}
	var s rspec.State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("invalid container state on stdin: %w", err)
	}
	if s.Bundle == "" || !filepath.IsAbs(s.Bundle) {
		return nil, fmt.Errorf("invalid container state on stdin: bundle %q is not an absolute path", s.Bundle)
	}
	return &s, nil
}

// RootfsPath returns the host path of the bundle's root filesystem: the
// spec's root.path, relative to the bundle unless absolute.
func RootfsPath(bundle string) (string, error) {
	cfg := filepath.Join(bundle, "config.json")
	f, err := os.Open(cfg)
	if err != nil {
		return "", fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return "", fmt.Errorf("bundle: read %s: %w", cfg, err)
	}
	if len(data) > maxConfigSize {
		return "", fmt.Errorf("bundle: %s is larger than %d bytes", cfg, maxConfigSize)
	}
	var spec struct {
		Root *rspec.Root `json:"root"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return "", fmt.Errorf("bundle: invalid %s: %w", cfg, err)
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return "", fmt.Errorf("bundle: %s has no root.path", cfg)
	}
	p := spec.Root.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(bundle, p)
	}
	return p, nil
}

// Open finds the rootfs of the container described by the OCI state on r.
func Open(r io.Reader) (*Root, error) {
	s, err := ReadState(r)
	if err != nil {
		return nil, err
	}
	p, err := RootfsPath(s.Bundle)
	if err != nil {
		return nil, err
	}
	return OpenRoot(p)
}
