package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nvbind/nvbind/internal/atomicfile"
)

// SpecFile is the spec's file name inside a bundle.
const SpecFile = "config.json"

// maxSpecSize bounds what nvbind reads; real specs are a few KiB.
const maxSpecSize = 16 << 20

// Probe holds the only parts of a spec a GPU request can come from. Decoding
// just these keeps the no-request path cheap.
type Probe struct {
	Process *struct {
		Env []string `json:"env"`
	} `json:"process"`
	Annotations map[string]string `json:"annotations"`
}

// Env returns the process environment, nil when the spec has no process.
func (p *Probe) Env() []string {
	if p.Process == nil {
		return nil
	}
	return p.Process.Env
}

// ReadSpec reads the bundle's config.json.
func ReadSpec(bundle string) ([]byte, error) {
	path := filepath.Join(bundle, SpecFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read bundle spec: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read bundle spec: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxSpecSize {
		return nil, fmt.Errorf("read bundle spec %s: not a regular file of at most %d bytes", path, maxSpecSize)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("read bundle spec %s: %w", path, err)
	}
	return data, nil
}

// ParseProbe decodes the request-bearing parts of a spec. It rejects
// anything that is not a complete JSON object, so a truncated config.json
// is reported before any work is done.
func ParseProbe(data []byte) (*Probe, error) {
	var p Probe
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", SpecFile, err)
	}
	return &p, nil
}

// ParseSpec decodes a whole spec.
func ParseSpec(data []byte) (*rspec.Spec, error) {
	var s rspec.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", SpecFile, err)
	}
	if s.Version == "" {
		return nil, fmt.Errorf("invalid %s: no ociVersion", SpecFile)
	}
	return &s, nil
}

// LoadSpec reads and decodes the bundle's spec.
func LoadSpec(bundle string) (*rspec.Spec, error) {
	data, err := ReadSpec(bundle)
	if err != nil {
		return nil, err
	}
	return ParseSpec(data)
}

// WriteSpec replaces the bundle's config.json atomically, keeping its mode.
func WriteSpec(bundle string, s *rspec.Spec) error {
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode %s: %w", SpecFile, err)
	}
	return atomicfile.Write(filepath.Join(bundle, SpecFile), data, 0o600)
}
