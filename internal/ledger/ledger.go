// Package ledger keeps the live GPU grants of a host: one JSON file per
// container under a directory on tmpfs (/run/nvbind/ledger: containers do
// not survive a reboot, nor does the ledger). nvbind-runtime records an
// entry when a create gets GPUs and releases it on delete; every read
// reclaims the entries of containers the low-level runtime no longer
// knows (engine crash, kill -9 of a shim, runc delete behind nvbind's back).
//
// A lock file serialises writers: Claim holds it exclusively around the
// quota/exclusivity check and the write, so two creates cannot both take
// the last free GPU; readers and releases hold it shared. The package is
// on the runtime's hot path and stays light: no NVML, no JSON beyond the
// standard library, no exec. A file's name carries short hashes of the
// entry's tenant and devices, so that a create reads only the entries it
// might conflict with (see names.go).
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
// <id>@<tenant>@<devices>.json beside it (names.go).
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
	// PID is the process that made the entry (the runtime that becomes
	// runc create): it keeps the entry alive until the low-level runtime
	// has written its state.
	PID int `json:"pid"`
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

// lock takes the ledger lock (exclusive or shared). create makes the
// directory when missing; without it a missing directory is an empty
// ledger and the returned unlock is a no-op.
func (l *Ledger) lock(how int, create bool) (func(), error) {
	path := filepath.Join(l.dir, lockName)
	flags := unix.O_RDWR | unix.O_CREAT
	if !create {
		// Readers need no write access: `nvbind ps` works for users who
		// may read /run/nvbind (a flock works on a read-only fd).
		flags = unix.O_RDONLY
	}
	fd, err := openRetry(path, flags, 0o644)
	if errors.Is(err, unix.ENOENT) {
		if !create {
			return func() {}, nil
		}
		if err = os.MkdirAll(l.dir, 0o755); err == nil {
			fd, err = openRetry(path, flags, 0o644)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	for {
		err = unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ledger: lock %s: %w", path, err)
	}
	// Closing the file releases the flock.
	return func() { unix.Close(fd) }, nil
}

// List returns the live entries, oldest first, reclaiming dead ones.
func (l *Ledger) List() ([]Entry, error) {
	unlock, err := l.lock(unix.LOCK_SH, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	names, err := l.names()
	if err != nil {
		return nil, err
	}
	out := l.load(names)
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// reclaimAbove: a Claim that finds more entries than this reads them all,
// reclaiming the dead, so that a host where nothing lists the ledger does
// not pile up entries of containers that died behind nvbind's back.
const reclaimAbove = 256

// Claim records e unless it conflicts with a live entry (Conflict, with
// maxGPUs the quota of e's tenant, 0 for none); the reason is then
// returned and nothing is recorded. The check and the write are one step
// for every other create: both happen under the exclusive lock. Only the
// entries that could conflict are read (and reclaimed if dead): those
// sharing a device where either side is exclusive, and with a quota those
// of the same tenant when their devices and e's exceed it. Sharing GPUs,
// or staying within a quota, costs no read at all.
func (l *Ledger) Claim(e *Entry, maxGPUs int) (string, error) {
	unlock, err := l.lock(unix.LOCK_EX, true)
	if err != nil {
		return "", err
	}
	defer unlock()
	names, err := l.names()
	if err != nil {
		return "", err
	}
	mine := parseName(fileName(e))
	var relevant []string
	for _, n := range names {
		p := parseName(n)
		switch {
		case p.id == mine.id:
			// A create retried with the same id replaces its entry.
			unix.Unlink(filepath.Join(l.dir, n))
		case len(names) > reclaimAbove || mine.conflictsWith(p) || maxGPUs > 0 && p.tenant == mine.tenant:
			relevant = append(relevant, n)
		}
	}
	// The names alone clear most creates: no exclusive device in common
	// and the tenant's distinct devices within the quota. Only a possible
	// conflict is read, its dead entries reclaimed, and judged.
	if !mine.mayConflict(relevant, maxGPUs) {
		return "", l.write(e)
	}
	if why := Conflict(l.load(relevant), e, maxGPUs); why != "" {
		return why, nil
	}
	return "", l.write(e)
}

// Record writes e without a check.
func (l *Ledger) Record(e *Entry) error {
	unlock, err := l.lock(unix.LOCK_SH, true)
	if err != nil {
		return err
	}
	defer unlock()
	return l.write(e)
}

// write writes e's entry, then the link <id>.id that names it, so that a
// delete finds it with one readlink (and most deletes, of containers
// without GPUs, learn so from that one call).
func (l *Ledger) write(e *Entry) error {
	data := append(e.appendJSON(make([]byte, 0, 512)), '\n')
	name := fileName(e)
	if err := atomicfile.WriteVolatile(filepath.Join(l.dir, name), data, 0o644); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	link := l.linkPath(e.ID)
	err := unix.Symlink(name, link)
	if errors.Is(err, unix.EEXIST) {
		unix.Unlink(link)
		err = unix.Symlink(name, link)
	}
	if err != nil {
		unix.Unlink(filepath.Join(l.dir, name))
		return fmt.Errorf("ledger: link %s: %w", link, err)
	}
	return nil
}

// linkPath is the link naming container id's entry file.
func (l *Ledger) linkPath(id string) string { return filepath.Join(l.dir, idPart(id)+".id") }

// entryName returns the file name of container id's entry ("" when it
// has none).
func (l *Ledger) entryName(id string) (string, error) {
	name, err := os.Readlink(l.linkPath(id))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("ledger: %w", err)
	case strings.Contains(name, "/") || !strings.HasSuffix(name, ".json"):
		return "", fmt.Errorf("ledger: %s: not an entry name: %q", l.linkPath(id), name)
	}
	return name, nil
}

// Held reports whether container id has an entry: one readlink, no
// parse, for the delete path.
func (l *Ledger) Held(id string) bool {
	name, err := l.entryName(id)
	return err == nil && name != ""
}

// Get returns container id's entry (nil when it has none), alive or not.
func (l *Ledger) Get(id string) (*Entry, error) {
	name, err := l.entryName(id)
	if err != nil || name == "" {
		return nil, err
	}
	e, err := readEntry(filepath.Join(l.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return e, err
}

// Release drops container id's entry; an id with no entry is not an error
// (most containers have no GPU).
func (l *Ledger) Release(id string) error {
	name, err := l.entryName(id)
	if err != nil || name == "" {
		return err
	}
	unlock, err := l.lock(unix.LOCK_SH, false)
	if err != nil {
		return err
	}
	defer unlock()
	l.remove(name)
	return nil
}

// remove drops an entry file and its link.
func (l *Ledger) remove(name string) {
	unix.Unlink(filepath.Join(l.dir, name))
	link := filepath.Join(l.dir, parseName(name).id+".id")
	if target, err := os.Readlink(link); err == nil && target == name {
		unix.Unlink(link)
	}
}

// names lists the entry files (a missing directory is an empty ledger).
func (l *Ledger) names() ([]string, error) {
	all, err := readNames(l.dir)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: %s: %w", l.dir, err)
	}
	out := all[:0]
	for _, n := range all {
		if !strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".json") {
			out = append(out, n)
		}
	}
	return out, nil
}

// load reads names and removes those whose container is gone. The caller
// holds the lock (shared or exclusive): removals are idempotent.
func (l *Ledger) load(names []string) []Entry {
	var out []Entry
	for _, n := range names {
		e, err := readEntry(filepath.Join(l.dir, n))
		if errors.Is(err, unix.ENOENT) {
			continue // released while we listed
		}
		if err != nil || !l.Alive(e) {
			// Entries are written atomically: one that does not parse is
			// not nvbind's. Dead ones are reclaimed.
			l.remove(n)
			continue
		}
		out = append(out, *e)
	}
	return out
}

func readEntry(p string) (*Entry, error) {
	data, err := readSmall(p)
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
