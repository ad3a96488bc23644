package handoff

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/nvbind/nvbind/internal/plainfile"
	"github.com/nvbind/nvbind/internal/reqscan"
)

// SpecFile is the spec's file name inside a bundle.
const SpecFile = "config.json"

// maxSpecSize bounds what nvbind reads; real specs are a few KiB.
const maxSpecSize = 16 << 20

// ErrTooLarge marks a spec over the size nvbind reads into memory.
var ErrTooLarge = errors.New("larger than nvbind-runtime reads")

// ReadSpec reads the spec file at path (a bundle's config.json, or crun's
// --config). A file over maxSpecSize gives an error wrapping ErrTooLarge;
// the caller then asks FileMayRequest whether it matters.
func ReadSpec(path string) ([]byte, error) {
	f, err := plainfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read bundle spec: %w", err)
	}
	defer f.Close()
	size, regular, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read bundle spec: %w", err)
	}
	if !regular {
		return nil, fmt.Errorf("read bundle spec %s: not a regular file", path)
	}
	if size > maxSpecSize {
		return nil, fmt.Errorf("read bundle spec %s: %d bytes, %w (%d)", path, size, ErrTooLarge, maxSpecSize)
	}
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil && size > 0 {
		return nil, fmt.Errorf("read bundle spec %s: %w", path, err)
	}
	return data, nil
}

// FileMayRequest is reqscan.MayRequestWith for a spec too large to read
// whole: it streams the file. A container that asks for no GPU passes
// through however large its spec, as runc would take it.
func FileMayRequest(path string, prefixes []string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	overlap := 64 // longer than any marker
	for _, p := range prefixes {
		overlap = max(overlap, len(p))
	}
	buf := make([]byte, 1<<20+overlap)
	keep := 0
	for {
		n, err := f.Read(buf[keep:])
		if n > 0 {
			total := keep + n
			if reqscan.MayRequestWith(buf[:total], prefixes) {
				return true, nil
			}
			keep = min(overlap, total)
			copy(buf, buf[total-keep:total])
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}
