package hook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tidwall/gjson"
)

// Bounds on the inputs the hook reads from the runtime.
const (
	MaxStateSize  = 1 << 20
	MaxConfigSize = 16 << 20
)

// ReadState decodes the OCI state the runtime writes on a hook's stdin.
func ReadState(r io.Reader) (*rspec.State, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("read container state from stdin: %w", err)
	}
	if len(data) > MaxStateSize {
		return nil, fmt.Errorf("container state on stdin is larger than %d bytes", MaxStateSize)
	}
	if len(data) == 0 {
		return nil, errors.New("no container state on stdin (nvbind-hook runs as an OCI hook)")
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("invalid container state on stdin: %w", syntaxError(data))
	}
	var s rspec.State
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		return nil, errors.New("invalid container state on stdin: not a JSON object")
	}
	if s.ID, err = stringMember(root, "id"); err == nil {
		s.Bundle, err = stringMember(root, "bundle")
	}
	if err == nil {
		s.Pid, err = intMember(root, "pid")
	}
	if err != nil {
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
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return "", fmt.Errorf("bundle: read %s: %w", cfg, err)
	}
	if len(data) > MaxConfigSize {
		return "", fmt.Errorf("bundle: %s is larger than %d bytes", cfg, MaxConfigSize)
	}
	if !json.Valid(data) {
		return "", fmt.Errorf("bundle: invalid %s: %w", cfg, syntaxError(data))
	}
	top := gjson.ParseBytes(data)
	if !top.IsObject() {
		return "", fmt.Errorf("bundle: invalid %s: not a JSON object", cfg)
	}
	var p string
	if root, ok := member(top, "root"); ok && root.Type != gjson.Null {
		if !root.IsObject() {
			return "", fmt.Errorf("bundle: invalid %s: root is not an object", cfg)
		}
		if p, err = stringMember(root, "path"); err != nil {
			return "", fmt.Errorf("bundle: invalid %s: root: %w", cfg, err)
		}
	}
	if p == "" {
		return "", fmt.Errorf("bundle: %s has no root.path", cfg)
	}
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

// The state and config.json are read with gjson rather than encoding/json,
// whose reflection costs a cold hook process more than the rest of its
// start; the rules are encoding/json's (as runc reads them): a key matches
// its field ignoring case, the last of repeated keys wins, null is empty.

// member returns the last member of object v whose key is key, ignoring
// case.
func member(v gjson.Result, key string) (gjson.Result, bool) {
	var out gjson.Result
	found := false
	v.ForEach(func(k, val gjson.Result) bool {
		if strings.EqualFold(k.Str, key) {
			out, found = val, true
		}
		return true
	})
	return out, found
}

// stringMember is the string member key of object v ("" when absent or
// null).
func stringMember(v gjson.Result, key string) (string, error) {
	m, ok := member(v, key)
	if !ok || m.Type == gjson.Null {
		return "", nil
	}
	if m.Type != gjson.String || !utf8.ValidString(m.Str) {
		return "", fmt.Errorf("%s: %.40s is not a UTF-8 string", key, m.Raw)
	}
	return m.Str, nil
}

// intMember is the integer member key of object v (0 when absent or
// null): the prestart door needs the container's pid.
func intMember(v gjson.Result, key string) (int, error) {
	m, ok := member(v, key)
	if !ok || m.Type == gjson.Null {
		return 0, nil
	}
	n, err := strconv.Atoi(m.Raw)
	if m.Type != gjson.Number || err != nil {
		return 0, fmt.Errorf("%s: %.40s is not an integer", key, m.Raw)
	}
	return n, nil
}

// syntaxError words why data is not JSON, as encoding/json does (the slow
// path, for data json.Valid refused).
func syntaxError(data []byte) error {
	if err := json.Unmarshal(data, new(json.RawMessage)); err != nil {
		return err
	}
	return errors.New("invalid JSON")
}
