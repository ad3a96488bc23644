package gpu

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// newCache builds a new-format ld.so.cache the way glibc lays it out.
func newCache(entries []cacheEntry) []byte {
	var strs bytes.Buffer
	type raw struct{ flags, key, val uint32 }
	var raws []raw
	base := 48 + 24*len(entries)
	for _, e := range entries {
		k := base + strs.Len()
		strs.WriteString(e.Name + "\x00")
		v := base + strs.Len()
		strs.WriteString(e.Path + "\x00")
		raws = append(raws, raw{uint32(e.Flags), uint32(k), uint32(v)})
	}
	var b bytes.Buffer
	b.WriteString(newCacheMagic)
	le := binary.LittleEndian
	binary.Write(&b, le, uint32(len(entries)))
	binary.Write(&b, le, uint32(strs.Len()))
	b.Write(make([]byte, 4+4+12)) // flags+pad, extension offset, unused
	for _, r := range raws {
		binary.Write(&b, le, r.flags)
		binary.Write(&b, le, r.key)
		binary.Write(&b, le, r.val)
		binary.Write(&b, le, uint32(0)) // osversion
		binary.Write(&b, le, uint64(0)) // hwcap
	}
	b.Write(strs.Bytes())
	return b.Bytes()
}

func TestParseLDCache(t *testing.T) {
	want := []cacheEntry{
		{Name: "libcuda.so.1", Path: "/lib/x86_64-linux-gnu/libcuda.so.1", Flags: flagELFLibc6 | flagX8664Lib64},
		{Name: "libcuda.so.1", Path: "/lib/i386-linux-gnu/libcuda.so.1", Flags: flagELFLibc6},
		{Name: "libfoo.so", Path: "/usr/lib/libfoo.so", Flags: 1},
	}
	got, err := parseLDCache(newCache(want))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if !got[0].is64() || got[0].is32() || got[1].is64() || !got[1].is32() || got[2].is64() || got[2].is32() {
		t.Errorf("64/32-bit classification wrong: %+v", got)
	}
}

func TestParseLDCacheRejectsBadData(t *testing.T) {
	good := newCache([]cacheEntry{{Name: "libcuda.so.1", Path: "/lib/libcuda.so.1", Flags: 0x303}})
	for name, data := range map[string][]byte{
		"empty":         nil,
		"garbage":       []byte("not a cache at all, not even close"),
		"truncated":     good[:40],
		"entries past":  append(append([]byte{}, good[:20]...), 0xff, 0xff, 0xff, 0x0f),
		"bad offsets":   func() []byte { b := append([]byte{}, good...); b[48+4] = 0xff; b[48+5] = 0xff; return b }(),
		"old truncated": []byte(oldCacheMagic + "\x00\x05\x00\x00\x00"),
	} {
		if _, err := parseLDCache(data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseLDCache(f *testing.F) {
	f.Add(newCache([]cacheEntry{{Name: "libcuda.so.1", Path: "/lib/libcuda.so.1", Flags: 0x303}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		parseLDCache(data) // must not panic
	})
}
