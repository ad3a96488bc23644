// Package ledger keeps the live GPU grants of a host: one JSON file per
// container under a directory on tmpfs (/run/nvbind/ledger: containers do
// not survive a reboot, nor does the ledger). nvbind-runtime records an
// entry when a create gets GPUs and releases it on delete; every read
// reclaims the entries of containers the low-level runtime no longer
// knows (engine crash, kill -9 of a shim, runc delete behind nvbind's back).
//
// A lock file serialises writers: Update holds it exclusively around the
// quota/exclusivity check and the write, so two creates cannot both take
// the last free GPU; readers and releases hold it shared. The package is
// on the runtime's hot path and stays light: no NVML, no JSON beyond the
// standard library, no exec.
package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nvbind/nvbind/internal/atomicfile"
)

// DefaultDir is where the runtime keeps the ledger.
const DefaultDir = "/run/nvbind/ledger"

// lockName is the lock file inside the ledger directory; entries are
// <id>.json beside it.
const lockName = ".lock"

// Device is one GPU or MIG device granted to a container.
type Device struct {
	// Name is the CDI device name as granted (nvidia.com/gpu=0).
	Name string `json:"name"`
	// Index is "0" for a GPU, "0:1" for a MIG device ("" when unknown).
	Index string `json:"index,omitempty"`
	// UUID is GPU-... or MIG-... ("" when unknown: MIG on the procfs path).
	UUID string `json:"uuid,omitempty"`
	// Parent is a MIG device's GPU UUID.
	Parent string `json:"parent,omitempty"`
	MIG    bool   `json:"mig,omitempty"`
	// Exclusive: no other live container may be given this device.
	Exclusive bool `json:"exclusive,omitempty"`
}

// Key identifies the device across entries: its UUID when known, else its
// index (MIG devices have their own keys: they count apart from the GPU).
func (d Device) Key() string {
	switch {
	case d.UUID != "":
		return d.UUID
	case d.Index != "":
		return "index:" + d.Index
	}
	return d.Name
}

// Entry is one container's grant.
type Entry struct {
	ID string `json:"id"`
	// Runtime is the low-level runtime's path; Root its --root (the
	// runtime's default when not given), where its state lives.
	Runtime string    `json:"runtime"`
	Root    string    `json:"root"`
	Bundle  string    `json:"bundle"`
	Tenant  string    `json:"tenant"`
	Rule    string    `json:"rule,omitempty"`
	Profile string    `json:"profile,omitempty"`
	Devices []Device  `json:"devices"`
	Created time.Time `json:"created"`
	// PID and PIDStart name the process that made the entry (the runtime
	// that becomes runc create): it keeps the entry alive until the
	// low-level runtime has written its state.
	PID      int    `json:"pid"`
	PIDStart uint64 `json:"pidStart,omitempty"`
}

// Ledger is a ledger directory.
type Ledger struct {
	dir string
	// Alive reports whether e's container still exists; LiveInRuntime
	// unless a test stands in.
	Alive func(e *Entry) bool
}

// Open returns the ledger kept in dir (created on first write).
func Open(dir string) *Ledger {
	return &Ledger{dir: dir, Alive: LiveInRuntime}
}

// Dir is the ledger's directory.
func (l *Ledger) Dir() string { return l.dir }

// EntryPath is the file that holds container id's entry.
func (l *Ledger) EntryPath(id string) string { return filepath.Join(l.dir, fileName(id)) }

// fileName maps a container id to a file name; ids runc accepts
// ([A-Za-z0-9_+.-]) are used as they are, anything else is hex-encoded so
// that no id can name a path outside the directory.
func fileName(id string) string {
	if id != "" && id != "." && id != ".." && !strings.HasPrefix(id, ".") && safeID(id) && len(id) <= 200 {
		return id + ".json"
	}
	return fmt.Sprintf("x-%x.json", id)
}

func safeID(id string) bool {
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// lock takes the ledger lock (exclusive or shared). create makes the
// directory when missing; without it a missing directory is an empty
// ledger and the returned unlock is a no-op.
func (l *Ledger) lock(how int, create bool) (func(), error) {
	if create {
		if err := os.MkdirAll(l.dir, 0o755); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
	}
	f, err := os.OpenFile(filepath.Join(l.dir, lockName), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		if !create && errors.Is(err, fs.ErrNotExist) {
			return func() {}, nil
		}
		return nil, fmt.Errorf("ledger: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ledger: lock %s: %w", f.Name(), err)
	}
	// Closing the file releases the flock.
	return func() { f.Close() }, nil
}

// List returns the live entries, oldest first, reclaiming dead ones.
func (l *Ledger) List() ([]Entry, error) {
	unlock, err := l.lock(unix.LOCK_SH, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return l.live()
}

// Update runs fn on the live entries with the ledger locked exclusively.
// fn returns the entry to record (nil: nothing), or an error, which Update
// returns as it is. The entry is written before the lock is released, so
// the check fn makes and the write are one step for every other create.
func (l *Ledger) Update(fn func(live []Entry) (*Entry, error)) error {
	unlock, err := l.lock(unix.LOCK_EX, true)
	if err != nil {
		return err
	}
	defer unlock()
	live, err := l.live()
	if err != nil {
		return err
	}
	e, err := fn(live)
	if err != nil || e == nil {
		return err
	}
	return l.write(e)
}

// Record writes e without a check (the shared lock keeps it apart from
// Update's check).
func (l *Ledger) Record(e *Entry) error {
	unlock, err := l.lock(unix.LOCK_SH, true)
	if err != nil {
		return err
	}
	defer unlock()
	return l.write(e)
}

func (l *Ledger) write(e *Entry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("ledger: encode %s: %w", e.ID, err)
	}
	if err := atomicfile.Write(l.EntryPath(e.ID), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// Release drops container id's entry; an id with no entry is not an error
// (most containers have no GPU).
func (l *Ledger) Release(id string) error {
	p := l.EntryPath(id)
	// Most deletes are of containers without GPUs: no lock for them.
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	unlock, err := l.lock(unix.LOCK_SH, false)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ledger: release %s: %w", id, err)
	}
	return nil
}

// Get returns container id's entry (nil when it has none), alive or not.
func (l *Ledger) Get(id string) (*Entry, error) {
	e, err := readEntry(l.EntryPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return e, err
}

// live reads every entry and removes those whose container is gone. The
// caller holds the lock (shared or exclusive): removals are idempotent.
func (l *Ledger) live() ([]Entry, error) {
	ents, err := os.ReadDir(l.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	var out []Entry
	for _, de := range ents {
		name := de.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue
		}
		p := filepath.Join(l.dir, name)
		e, err := readEntry(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // released while we listed
		}
		if err != nil || !l.Alive(e) {
			// Unreadable entries cannot be checked: the write was
			// atomic, so it is not ours. Dead ones are reclaimed.
			os.Remove(p)
			continue
		}
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func readEntry(p string) (*Entry, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("ledger: %s: %w", p, err)
	}
	if e.ID == "" {
		return nil, fmt.Errorf("ledger: %s: no container id", p)
	}
	return &e, nil
}
