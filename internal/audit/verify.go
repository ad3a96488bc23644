package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Break is the first place the chain does not hold.
type Break struct {
	File   string
	Line   int
	Reason string
}

func (b *Break) Error() string { return fmt.Sprintf("%s:%d: %s", b.File, b.Line, b.Reason) }

// Verify checks the chain over files (oldest first, as Files returns
// them) and returns the number of lines checked and the first break
// (a *Break) or an I/O error. The first line of the oldest file is taken
// as the anchor: its predecessor may have been rotated away.
func Verify(files []string) (int, error) {
	n, prev, first := 0, "", true
	for _, path := range files {
		err := eachLine(path, func(no int, line []byte) error {
			n++
			body, hash, ok := split(line)
			if !ok {
				return &Break{path, no, "not an audit line (no hash)"}
			}
			if Sum(body) != hash {
				return &Break{path, no, "hash mismatch: the line was changed"}
			}
			var r Record
			if err := json.Unmarshal(body, &r); err != nil {
				return &Break{path, no, "not an audit line: " + err.Error()}
			}
			if !first && r.Prev != prev {
				return &Break{path, no, "chain broken: prev is not the hash of the line before (a line was removed, added or reordered)"}
			}
			first, prev = false, hash
			return nil
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// eachLine calls fn with each line of path (without its newline), numbered
// from 1.
func eachLine(path string, fn func(no int, line []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for no := 1; ; no++ {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if err := fn(no, bytes.TrimSuffix(line, []byte("\n"))); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
}

// Read returns the records of files (oldest first) that keep returns true
// for; lines that do not decode are skipped (Verify reports them).
func Read(files []string, keep func(*Record) bool) ([]Record, error) {
	var out []Record
	for _, path := range files {
		err := eachLine(path, func(_ int, line []byte) error {
			var r Record
			if json.Unmarshal(line, &r) == nil && (keep == nil || keep(&r)) {
				out = append(out, r)
			}
			return nil
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
