package inject

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nvbind/nvbind/internal/spectrust"
)

// indexCases are JSON specs whose members sit in different places.
var indexCases = map[string]string{
	"fixture": strings.NewReplacer("%s", "a").Replace(jsonSpecFixture),
	"annotations and escapes": ` {"cdiVersion":"0.6.0","kind":"vendor.com/class",
		"annotations":{"k\u0041":"v\"1"},
		"containerEdits":{"env":["A=\u00e9"],"mounts":[{"hostPath":"/h","containerPath":"/c","options":["ro","bind"]}]},
		"devices":[
			{"annotations":null,"name":"d0","containerEdits":{"deviceNodes":[{"path":"/dev/x0"}]}},
			{"name":"d1","annotations":{"a":"b"},"containerEdits":{"env":["D=1"]}}]}`,
	"no top-level edits, devices first": `{"devices":[{"name":"only","containerEdits":{"env":["O=1"]}}],
		"kind":"vendor.com/class","cdiVersion":"0.5.0"}`,
}

// TestSpecIndexDecodesAsTheWalk: a spec decoded from its layout, through
// an index file, is the spec the walk decodes.
func TestSpecIndexDecodesAsTheWalk(t *testing.T) {
	for name, spec := range indexCases {
		t.Run(name, func(t *testing.T) {
			data := []byte(spec)
			raw, pending, layout, err := parseJSONSpec(data)
			if err != nil || layout == nil {
				t.Fatalf("walk: %v, layout %v", err, layout)
			}
			id := fileID{dev: 1, ino: 2, size: int64(len(data)), mtime: 3, ctimeN: 4}
			got, gotID, ok := decodeIndex(encodeIndex(id, layout))
			if !ok || gotID != id || !reflect.DeepEqual(got, layout) {
				t.Fatalf("index round trip: %v %v %v, want %v %v", ok, gotID, got, id, layout)
			}
			b, err := fromLayout(data, got)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(b.raw, raw) || !reflect.DeepEqual(b.pending, pending) {
				t.Errorf("from the index:\n%+v\n%q\nwalk:\n%+v\n%q", b.raw, b.pending, raw, pending)
			}
		})
	}
}

// TestSpecIndexBadFiles: an index file that is not one is a miss.
func TestSpecIndexBadFiles(t *testing.T) {
	data := []byte(indexCases["annotations and escapes"])
	_, _, layout, _ := parseJSONSpec(data)
	good := encodeIndex(fileID{}, layout)
	outside := *layout
	outside.top[4] = span{off: uint32(len(data)) - 2, n: 10}
	shifted := *layout
	shifted.top[4].off++ // no longer one whole value
	for name, idx := range map[string][]byte{
		"empty":        nil,
		"other magic":  append([]byte("nvbind-cdi-index-0\n"), good[len(indexMagic):]...),
		"truncated":    good[:len(good)-1],
		"trailing":     append(append([]byte{}, good...), 0),
		"huge count":   binary.AppendUvarint(encodeIndex(fileID{}, &specLayout{})[:len(indexMagic)+5+10], 1<<40),
		"out of range": encodeIndex(fileID{}, &outside),
		"shifted":      encodeIndex(fileID{}, &shifted),
	} {
		t.Run(name, func(t *testing.T) {
			l, _, ok := decodeIndex(idx)
			if !ok {
				return
			}
			if _, err := fromLayout(data, l); err == nil {
				t.Errorf("a bad index decoded")
			}
		})
	}
}

// TestSpecIndexDeviceEditsChecked: a device's edits, which fromLayout
// leaves undecoded, are checked to be JSON when the device is used.
func TestSpecIndexDeviceEditsChecked(t *testing.T) {
	data := []byte(indexCases["annotations and escapes"])
	_, _, layout, _ := parseJSONSpec(data)
	bad := *layout
	bad.devices = append([]deviceLayout{}, layout.devices...)
	bad.devices[0][2].off++ // inside the edits: not one whole value
	b, err := fromLayout(data, &bad)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := validated("x", 0, b.raw, b.pending)
	if err != nil {
		t.Fatal(err)
	}
	spec.indexed = true
	if _, err := (&specDevice{spec: spec, index: 0}).edits(); err == nil || !strings.Contains(err.Error(), "invalid JSON edits") {
		t.Errorf("edits from a bad index: %v", err)
	}
	if _, err := (&specDevice{spec: spec, index: 1}).edits(); err != nil {
		t.Errorf("the other device: %v", err)
	}
}

// TestReadSpecFileIndex: the second read of a spec goes through the index
// the first wrote; a changed spec, an index someone else may write (as
// root) and a spec changed just now do not.
func TestReadSpecFileIndex(t *testing.T) {
	settle := indexSettle
	indexSettle = 0
	defer func() { indexSettle = settle }()
	dir := t.TempDir()
	specPath := filepath.Join(dir, "nvidia.json")
	index := &specIndex{dir: filepath.Join(dir, "state", "cdi-index")}
	if spectrust.Enforced() {
		index.trust = &spectrust.Checker{}
	}
	read := func(t *testing.T) (names string, hit bool) {
		t.Helper()
		before := indexHits.Load()
		spec, err := readSpecFile(specPath, 0, index)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range spec.raw.Devices {
			names += d.Name + " "
		}
		return names, indexHits.Load() > before
	}
	writeSpecFile(t, dir, "nvidia.json", indexCases["annotations and escapes"])
	if names, hit := read(t); hit || names != "d0 d1 " {
		t.Fatalf("first read: %q, hit %v", names, hit)
	}
	if _, err := os.Stat(index.path(specPath)); err != nil {
		t.Fatalf("no index written: %v", err)
	}
	if names, hit := read(t); !hit || names != "d0 d1 " {
		t.Fatalf("second read: %q, hit %v", names, hit)
	}

	// Same size, other content: its change time tells. (The wait lets the
	// kernel's coarse clock move on, as indexSettle does outside tests.)
	time.Sleep(20 * time.Millisecond)
	writeSpecFile(t, dir, "nvidia.json", strings.Replace(indexCases["annotations and escapes"], `"d1"`, `"e1"`, 1))
	if names, hit := read(t); hit || names != "d0 e1 " {
		t.Errorf("changed spec: %q, hit %v", names, hit)
	}
	if names, hit := read(t); !hit || names != "d0 e1 " {
		t.Errorf("changed spec, read again: %q, hit %v", names, hit)
	}

	if spectrust.Enforced() {
		os.Chmod(index.path(specPath), 0o666)
		if _, hit := read(t); hit {
			t.Errorf("an index everyone may write was used")
		}
		os.Chmod(index.path(specPath), 0o644)
	}

	indexSettle = 1 << 62
	os.Remove(index.path(specPath))
	writeSpecFile(t, dir, "nvidia.json", indexCases["fixture"])
	read(t)
	if _, err := os.Stat(index.path(specPath)); err == nil {
		t.Errorf("a spec changed just now was indexed")
	}
}
