package gpu_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const hookPath = "/usr/local/bin/nvbind-hook"

func buildRoot(t *testing.T, opts simroot.Options) *simroot.Root {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("simulated driver roots need root (mknod)")
	}
	r, err := simroot.Build(filepath.Join(t.TempDir(), "driver"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// golden compares got with testdata/name after replacing the root's
// temporary path by /ROOT; -update rewrites the file.
func golden(t *testing.T, name, root string, got []byte) {
	t.Helper()
	got = bytes.ReplaceAll(got, []byte(root), []byte("/ROOT"))
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}
