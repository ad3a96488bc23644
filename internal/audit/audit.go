// Package audit keeps nvbind's decision log: one JSON object per line,
// each carrying the SHA-256 of the line before it ("prev") and of itself
// ("hash"), so that an edited, removed or reordered line breaks the chain
// and `nvbind audit verify` names it. Lines are appended with O_APPEND, one
// write each, under a lock file that also serialises size rotation; a
// rotated file keeps the chain (the new file's first line names the hash
// of the old file's last one).
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Tenant is who asked.
type Tenant struct {
	Key        string `json:"key"`
	Namespace  string `json:"namespace,omitempty"`
	Pod        string `json:"pod,omitempty"`
	CallerUID  uint32 `json:"callerUid"`
	CallerGID  uint32 `json:"callerGid"`
	ProcessUID uint32 `json:"processUid"`
	ProcessGID uint32 `json:"processGid"`
	Privileged bool   `json:"privileged"`
	Engine     string `json:"engine,omitempty"`
}

// Request is a request as asked or as granted.
type Request struct {
	Source       string            `json:"source,omitempty"`
	Devices      []string          `json:"devices,omitempty"`
	Ignored      []string          `json:"ignored,omitempty"`
	Capabilities []string          `json:"capabilities,omitempty"`
	Profile      string            `json:"profile,omitempty"`
	Params       map[string]string `json:"params,omitempty"`
}

// Record is one decision.
type Record struct {
	Time         string   `json:"time"`
	Decision     string   `json:"decision"` // allowed, narrowed, refused
	Container    string   `json:"container"`
	Bundle       string   `json:"bundle"`
	Tenant       Tenant   `json:"tenant"`
	Asked        Request  `json:"asked"`
	Granted      *Request `json:"granted,omitempty"`
	Rule         string   `json:"rule"`
	Reason       string   `json:"reason,omitempty"`
	Notes        []string `json:"notes,omitempty"`
	Profile      string   `json:"profile,omitempty"`
	Driver       string   `json:"driverVersion,omitempty"`
	ConfigBefore string   `json:"configSha256Before"`
	ConfigAfter  string   `json:"configSha256After,omitempty"`
	Prev         string   `json:"prev"`
	Hash         string   `json:"hash,omitempty"`
}

// Options configure a log.
type Options struct {
	// MaxSize rotates the log before a line would take it past MaxSize
	// bytes (0: never).
	MaxSize int64
	// Keep is how many rotated files (path.1 ... path.N) are kept.
	Keep int
}

// maxLine bounds one record; the request fields are bounded upstream.
const maxLine = 64 << 10

// hashMarker ends every line's body; the hash follows it.
var hashMarker = []byte(`,"hash":"`)

// Sum returns the hex SHA-256 of data (config.json before and after).
func Sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// Log is an open audit log, locked for one append.
type Log struct {
	path string
	opts Options
	lock *os.File
	f    *os.File // the log, opened for append
}

// Open takes the log's lock (path + ".lock"), creating the directory's
// files 0600 as needed, and checks the log can be opened for append. Call
// Append, then Close. Opening first lets a caller fail before it changes
// anything when the log cannot be written.
func Open(path string, opts Options) (*Log, error) {
	// The directory is made private; an existing one is left as it is.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("audit log %s: lock: %w", path, err)
	}
	f, err := openLog(path)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &Log{path: path, opts: opts, lock: lock, f: f}, nil
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	return f, nil
}

// Close releases the lock.
func (l *Log) Close() error {
	if l == nil || l.lock == nil {
		return nil
	}
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	err := l.lock.Close() // closing drops the flock
	l.lock = nil
	return err
}

// Append writes r as one line chained to the log's last line, rotating
// first when the line would take the file past MaxSize.
func (l *Log) Append(r Record) error {
	if l.lock == nil {
		return errors.New("audit log: append after close")
	}
	if r.Time == "" {
		r.Time = time.Now().UTC().Format(time.RFC3339Nano)
	}
	f := l.f
	prev, size, err := lastHash(f)
	if err != nil {
		return fmt.Errorf("audit log %s: %w", l.path, err)
	}
	r.Prev, r.Hash = prev, ""
	line, err := Encode(r)
	if err != nil {
		return err
	}
	if l.opts.MaxSize > 0 && size > 0 && size+int64(len(line)) > l.opts.MaxSize {
		f.Close()
		l.f = nil
		if err := rotate(l.path, l.opts.Keep); err != nil {
			return err
		}
		if f, err = openLog(l.path); err != nil {
			return err
		}
		l.f = f
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("audit log %s: write: %w", l.path, err)
	}
	return nil
}

// Encode returns r as a log line (with its newline): the JSON body with
// r.Prev, then the body's hash as the last member.
func Encode(r Record) ([]byte, error) {
	r.Hash = ""
	body := appendRecord(make([]byte, 0, 1024), &r)
	if len(body) > maxLine {
		return nil, fmt.Errorf("audit record is %d bytes, more than %d", len(body), maxLine)
	}
	sum := Sum(body)
	line := make([]byte, 0, len(body)+len(hashMarker)+len(sum)+3)
	line = append(line, body[:len(body)-1]...)
	line = append(line, hashMarker...)
	line = append(line, sum...)
	line = append(line, '"', '}', '\n')
	return line, nil
}

// split returns a line's body (as hashed) and its stored hash.
func split(line []byte) (body []byte, hash string, ok bool) {
	i := bytes.LastIndex(line, hashMarker)
	if i < 0 || !bytes.HasSuffix(line, []byte(`"}`)) {
		return nil, "", false
	}
	hash = string(line[i+len(hashMarker) : len(line)-2])
	body = append(append([]byte(nil), line[:i]...), '}')
	return body, hash, len(hash) == sha256.Size*2
}

// lastHash returns the hash of the file's last line ("" for an empty
// file) and the file's size. A last line without a valid hash (a torn or
// foreign line) is chained by its SHA-256, so verify reports it, not the
// line after it.
func lastHash(f *os.File) (string, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	size := fi.Size()
	if size == 0 {
		return "", 0, nil
	}
	// A line is well under 4 KiB; read more only when it is not.
	var buf []byte
	for _, want := range []int64{4 << 10, maxLine + 256} {
		n := min(size, want)
		buf = make([]byte, n)
		if _, err := f.ReadAt(buf, size-n); err != nil && !errors.Is(err, io.EOF) {
			return "", 0, err
		}
		buf = bytes.TrimRight(buf, "\n")
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
			break
		}
		if n == size {
			break
		}
	}
	if _, h, ok := split(buf); ok {
		return h, size, nil
	}
	return Sum(buf), size, nil
}

// rotate shifts path.N-1 → path.N ... path → path.1, dropping the oldest.
func rotate(path string, keep int) error {
	if keep < 1 {
		keep = 1
	}
	os.Remove(rotated(path, keep))
	for i := keep - 1; i >= 1; i-- {
		if err := os.Rename(rotated(path, i), rotated(path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("audit log rotate: %w", err)
		}
	}
	if err := os.Rename(path, rotated(path, 1)); err != nil {
		return fmt.Errorf("audit log rotate: %w", err)
	}
	return nil
}

func rotated(path string, i int) string { return path + "." + strconv.Itoa(i) }

// Files returns the log's files, oldest first: path.N ... path.1, path.
func Files(path string) []string {
	var old []string
	for i := 1; ; i++ {
		p := rotated(path, i)
		if _, err := os.Lstat(p); err != nil {
			break
		}
		old = append(old, p)
	}
	out := make([]string, 0, len(old)+1)
	for i := len(old) - 1; i >= 0; i-- {
		out = append(out, old[i])
	}
	if _, err := os.Lstat(path); err == nil || len(out) == 0 {
		out = append(out, path)
	}
	return out
}
