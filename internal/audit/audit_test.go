package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func appendN(t *testing.T, path string, opts Options, n int, tag string) {
	t.Helper()
	for i := 0; i < n; i++ {
		l, err := Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Append(Record{Decision: "allowed", Container: fmt.Sprintf("%s-%d", tag, i), Rule: "r"}); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
}

func TestChainVerifies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	appendN(t, path, Options{}, 5, "c")
	n, err := Verify(Files(path))
	if err != nil || n != 5 {
		t.Fatalf("Verify = %d, %v; want 5, nil", n, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v, want 0600", fi.Mode().Perm())
	}
	recs, err := Read(Files(path), func(r *Record) bool { return r.Container == "c-3" })
	if err != nil || len(recs) != 1 || recs[0].Prev == "" || recs[0].Hash == "" {
		t.Fatalf("Read = %+v, %v", recs, err)
	}
}

func TestVerifyNamesFirstBrokenLine(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(lines [][]byte) [][]byte
		line   int
		reason string
	}{
		{"edited field", func(l [][]byte) [][]byte {
			l[2] = bytes.Replace(l[2], []byte(`"allowed"`), []byte(`"refused"`), 1)
			return l
		}, 3, "hash mismatch"},
		{"edited and rehashed", func(l [][]byte) [][]byte {
			body, _, _ := split(l[1])
			body = bytes.Replace(body, []byte(`"c-1"`), []byte(`"c-X"`), 1)
			l[1] = append(append(body[:len(body)-1], hashMarker...), []byte(Sum(body)+`"}`)...)
			return l
		}, 3, "chain broken"},
		{"removed line", func(l [][]byte) [][]byte { return append(l[:1], l[2:]...) }, 2, "chain broken"},
		{"swapped lines", func(l [][]byte) [][]byte { l[1], l[2] = l[2], l[1]; return l }, 2, "chain broken"},
		{"garbage", func(l [][]byte) [][]byte { l[3] = []byte("hello"); return l }, 4, "no hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			appendN(t, path, Options{}, 5, "c")
			data, _ := os.ReadFile(path)
			lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
			lines = tt.edit(lines)
			os.WriteFile(path, append(bytes.Join(lines, []byte("\n")), '\n'), 0o600)
			_, err := Verify(Files(path))
			var b *Break
			if !errors.As(err, &b) || b.Line != tt.line || !strings.Contains(b.Reason, tt.reason) || b.File != path {
				t.Fatalf("Verify err = %v; want %s:%d %s", err, path, tt.line, tt.reason)
			}
		})
	}
}

func TestRotationKeepsChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	appendN(t, path, Options{MaxSize: 1200, Keep: 3}, 12, "c")
	files := Files(path)
	if len(files) != 4 || files[3] != path || files[0] != path+".3" {
		t.Fatalf("files = %v, want 3 rotated + current", files)
	}
	if _, err := Verify(files); err != nil {
		t.Fatalf("Verify across rotation: %v", err)
	}
	// The oldest kept file's first line is the anchor; dropping a middle
	// file breaks the chain.
	os.Remove(path + ".2")
	if _, err := Verify(Files(path)); err != nil {
		t.Logf("with .2 removed Files stops at .1: %v", err)
	}
	if _, err := Verify([]string{path + ".3", path + ".1", path}); err == nil {
		t.Fatal("a missing rotated file went unnoticed")
	}
}

func TestConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			appendN(t, path, Options{MaxSize: 4096, Keep: 50}, 10, fmt.Sprint("g", g))
		}()
	}
	wg.Wait()
	n, err := Verify(Files(path))
	if err != nil || n != 80 {
		t.Fatalf("Verify = %d, %v; want 80 lines, nil", n, err)
	}
}

func TestOpenUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	dir := filepath.Join(file, "dir")
	if _, err := Open(filepath.Join(dir, "audit.log"), Options{}); err == nil || !strings.Contains(err.Error(), "audit log") {
		t.Fatalf("Open in a missing dir: %v", err)
	}
}

// TestEncodeMatchesEncodingJSON keeps the hand-written encoder equal to
// encoding/json, which verify and show decode with.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	recs := []Record{
		{},
		{Time: "t", Decision: "refused", Container: "c\"\\\x00<>&\u2028é\xff", Bundle: "/b", Tenant: Tenant{Key: "k", Namespace: "ns", Pod: "p", CallerUID: 1, CallerGID: 2, ProcessUID: 3, ProcessGID: 4294967295, Privileged: true, Engine: "podman"},
			Asked:   Request{Source: "env", Devices: []string{"a", "b"}, Ignored: []string{"x"}, Capabilities: []string{"compute"}, Profile: "ml", Params: map[string]string{"z": "1", "a": "\t\n\r\b\f\x7f\x01"}},
			Granted: &Request{}, Rule: "r", Reason: "why", Notes: []string{"n"}, Profile: "ml", Driver: "580", ConfigBefore: "aa", ConfigAfter: "bb", Prev: "pp", Hash: "hh"},
	}
	for _, r := range recs {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRecord(nil, &r); string(got) != string(want) {
			t.Errorf("appendRecord:\n got %s\nwant %s", got, want)
		}
	}
}
