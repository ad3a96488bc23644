package inject

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tidwall/gjson"
	cdispec "tags.cncf.io/container-device-interface/specs-go"

	"github.com/nvbind/nvbind/internal/atomicfile"
	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/plainfile"
	"github.com/nvbind/nvbind/internal/spectrust"
)

// specindex.go remembers where the members of a JSON spec are in its file,
// so that the next create reading the same file (nvbind's just-in-time
// spec, read by every GPU create) decodes what it needs from those places
// instead of validating and walking the whole file: for an 8-GPU spec the
// walk was a GPU create's largest single step. An index describes one file
// content, known by the file's device, inode, size, modification and
// change times (as git's index knows a checked-out file): any write to the
// file changes its change time, which no caller can set. It is written
// only for a spec that parsed and validated, lives under the state dir
// (<state-dir>/cdi-index, one file per spec path), and is used only when
// it is as trustworthy as the spec itself (spectrust, as root) and every
// place it names holds a value of the right kind; anything else is a
// miss, and the spec is read as without an index.

// span is where a JSON value is in a spec file: data[off:off+n]; n == 0
// when the member is absent.
type span struct{ off, n uint32 }

// deviceLayout is where a device's specDeviceFields are.
type deviceLayout [3]span

// specLayout is where a spec's specFields are (top[3], the devices list,
// is unused: devices has each device's).
type specLayout struct {
	top     [5]span
	devices []deviceLayout
}

// fileID is what identifies a spec file's content without reading it.
type fileID struct {
	dev, ino            uint64
	size, mtime, ctimeN int64
}

func fileIDOf(st *syscall.Stat_t) fileID {
	return fileID{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctimeN: st.Ctim.Nano()}
}

// indexSettle is how old a spec's last change must be for it to be
// indexed: a file changed again within the clock's granularity (a few
// milliseconds on Linux) could keep its times, so a file changed just now
// is not indexed until later.
var indexSettle = time.Second

// indexHits counts the specs read through an index (for tests).
var indexHits atomic.Int64

// indexMagic starts every index file; a new format gets a new one.
const indexMagic = "nvbind-cdi-index-1\n"

// specIndex is the spec index under dir ("" when there is none).
type specIndex struct {
	dir   string
	trust *spectrust.Checker // nil: not running as root
}

// newSpecIndex is the spec index under cfg's state dir; nil without one.
func newSpecIndex(cfg *config.Config) *specIndex {
	if cfg.Runtime.StateDir == "" {
		return nil
	}
	x := &specIndex{dir: filepath.Join(cfg.Runtime.StateDir, "cdi-index")}
	if spectrust.Enforced() {
		x.trust = &spectrust.Checker{}
	}
	return x
}

// path is where the index of the spec at specPath is.
func (x *specIndex) path(specPath string) string {
	h := fnv.New64a()
	h.Write([]byte(specPath))
	return filepath.Join(x.dir, strconv.FormatUint(h.Sum64(), 16))
}

// lookup returns the layout recorded for the spec at specPath with
// content id, or nil.
func (x *specIndex) lookup(specPath string, id fileID) *specLayout {
	if x == nil || x.dir == "" {
		return nil
	}
	p := x.path(specPath)
	if x.trust != nil && x.trust.Check(p) != nil {
		return nil
	}
	data, err := plainfile.ReadFile(p)
	if err != nil {
		return nil
	}
	l, got, ok := decodeIndex(data)
	if !ok || got != id {
		return nil
	}
	return l
}

// store records l for the spec at specPath with content id, when that
// content has settled. Failing is harmless: the next create walks the spec.
func (x *specIndex) store(specPath string, id fileID, l *specLayout) {
	if x == nil || x.dir == "" || l == nil || time.Since(time.Unix(0, id.ctimeN)) < indexSettle {
		return
	}
	if err := os.MkdirAll(x.dir, 0o755); err != nil {
		return
	}
	p := x.path(specPath)
	if x.trust != nil && x.trust.Check(x.dir) != nil {
		return // an index there would be ignored
	}
	atomicfile.WriteVolatile(p, encodeIndex(id, l), 0o644)
}

// encodeIndex is the index file for l: the magic, then id and every span
// as unsigned varints.
func encodeIndex(id fileID, l *specLayout) []byte {
	b := []byte(indexMagic)
	for _, v := range []uint64{id.dev, id.ino, uint64(id.size), uint64(id.mtime), uint64(id.ctimeN)} {
		b = binary.AppendUvarint(b, v)
	}
	spans := func(ss []span) {
		for _, s := range ss {
			b = binary.AppendUvarint(b, uint64(s.off))
			b = binary.AppendUvarint(b, uint64(s.n))
		}
	}
	spans(l.top[:])
	b = binary.AppendUvarint(b, uint64(len(l.devices)))
	for _, d := range l.devices {
		spans(d[:])
	}
	return b
}

// decodeIndex reads an index file; ok is false for anything malformed.
func decodeIndex(data []byte) (l *specLayout, id fileID, ok bool) {
	rest, found := bytes.CutPrefix(data, []byte(indexMagic))
	if !found {
		return nil, id, false
	}
	next := func() uint64 {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			ok = false
			return 0
		}
		rest = rest[n:]
		return v
	}
	ok = true
	id = fileID{dev: next(), ino: next(), size: int64(next()), mtime: int64(next()), ctimeN: int64(next())}
	spans := func(ss []span) {
		for i := range ss {
			off, n := next(), next()
			if off > 1<<32-1 || n > 1<<32-1 {
				ok = false
			}
			ss[i] = span{off: uint32(off), n: uint32(n)}
		}
	}
	l = &specLayout{}
	spans(l.top[:])
	count := next()
	if !ok || count > uint64(len(rest)) { // each device takes at least 6 bytes
		return nil, id, false
	}
	l.devices = make([]deviceLayout, count)
	for i := range l.devices {
		spans(l.devices[i][:])
	}
	if !ok || len(rest) != 0 {
		return nil, id, false
	}
	return l, id, true
}

// errBadIndex: an index's places do not hold the values it says.
var errBadIndex = errors.New("spec index does not match the spec")

// fromLayout decodes a JSON spec from the places l names in data, as
// parseJSONSpec would, without validating or walking the rest of the file.
// Each place must hold one whole JSON value of its member's kind (a
// device's edits are checked when the device is used, see
// specDevice.edits), so that a damaged index is a miss.
func fromLayout(data []byte, l *specLayout) (*specBuilder, error) {
	b := newSpecBuilder(data)
	within := func(s span) bool { return uint64(s.off)+uint64(s.n) <= uint64(len(data)) }
	valid := func(s span) bool { return within(s) && gjson.Valid(b.rawAt(s)) }
	for i, s := range l.top {
		if i == 3 || s.n == 0 {
			continue
		}
		if !valid(s) {
			return nil, errBadIndex
		}
		b.member(i, b.value(s))
	}
	b.raw.Devices = make([]cdispec.Device, 0, len(l.devices))
	for _, dl := range l.devices {
		if (dl[0].n > 0 && !valid(dl[0])) || (dl[1].n > 0 && !valid(dl[1])) || !within(dl[2]) {
			return nil, errBadIndex
		}
		b.raw.Devices = append(b.raw.Devices, b.device(dl))
	}
	if b.r.Err != nil {
		return nil, b.r.Err
	}
	return b, nil
}
