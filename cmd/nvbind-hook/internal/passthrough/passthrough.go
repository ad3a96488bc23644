// Package passthrough answers `nvbind-hook precreate` for a container that
// asks for no GPU while the program is still initialising its packages.
//
// Podman runs the precreate hook for every container once nvbind's
// hooks.d file is installed, and most ask for no GPU: they get their spec
// back byte for byte. Go runs the init of every package a program links
// before main, and the packages the GPU path needs (the CDI library's YAML
// and regexps, the cgroup code's D-Bus, net and eBPF packages, the
// profiles) cost more to initialise than the rest of that answer. Go
// initialises packages in import-path order, each after the packages it
// imports (the spec's "Package initialization"; the linker orders even
// packages without init work so). This one imports only what os and
// bytes import, and internal/reqscan, and its path
// (github.com/nvbind/nvbind/cmd/...) sorts before those of the heavy
// packages (github.com/nvbind/nvbind/internal/..., go.yaml.in,
// golang.org/x/sys, tags.cncf.io, net), so its init runs right after os's
// and, for a spec without a request, writes it back and exits before
// theirs run.
//
// Anything else (another subcommand, flags it does not know, a request, a
// read error, an empty or very large spec) is left to main, unchanged:
// Stdin gives main what this package read, then the rest of stdin.
package passthrough

import (
	"bytes"
	"io"
	"os"
	"path"

	"github.com/nvbind/nvbind/internal/configcore"
	"github.com/nvbind/nvbind/internal/reqscan"
)

// maxRead bounds what init reads; a larger spec (real ones are a few KiB)
// goes to main, which reads the rest and applies the size limit.
const maxRead = 4 << 20

// stdin is what init read, then what it did not (nil: init read nothing).
var stdin io.Reader

func init() {
	config, ok := precreateCall(os.Args)
	if !ok {
		return
	}
	data, err := readUpTo(os.Stdin, maxRead)
	switch {
	case err != nil:
		stdin = io.MultiReader(bytes.NewReader(data), errReader{err})
		return
	case len(data) >= maxRead:
		stdin = io.MultiReader(bytes.NewReader(data), os.Stdin)
		return
	}
	stdin = bytes.NewReader(data)
	if len(data) == 0 || reqscan.MayRequest(data) || !plainConfig(config) {
		return
	}
	if _, err := os.Stdout.Write(data); err != nil {
		// As main would say it (cmd/nvbind-hook/doors.go).
		os.Stderr.WriteString("nvbind-hook: precreate: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

// plainConfig reports whether the config main would read is one
// configcore reads without the decoder and valid: then it has no [policy]
// table, so no annotation prefix of its own can ask for a GPU, and main
// would not refuse it. Anything else is main's to read and judge.
func plainConfig(config string) bool {
	if config == "" {
		config = configcore.Path()
	}
	cfg, err := configcore.Load(config, configcore.ParseFastOnly)
	return err == nil && len(cfg.AnnotationPrefixes()) == 0
}

// Stdin is where main reads the precreate spec from: what init read, if it
// read, else os.Stdin.
func Stdin() io.Reader {
	if stdin == nil {
		return os.Stdin
	}
	return stdin
}

// precreateCall reports whether argv is a precreate call main would run
// as such: `precreate` with at most a --config flag (main's doorArgv turns
// a call as nvidia-container-runtime-hook into prestart or a no-op), and
// that flag's value ("" when absent).
func precreateCall(argv []string) (config string, ok bool) {
	if len(argv) < 2 || argv[1] != "precreate" || path.Base(argv[0]) == "nvidia-container-runtime-hook" {
		return "", false
	}
	switch rest := argv[2:]; len(rest) {
	case 0:
		return "", true
	case 1:
		for _, f := range [...]string{"--config=", "-config="} {
			if hasPrefix(rest[0], f) {
				return rest[0][len(f):], true
			}
		}
	case 2:
		if rest[0] == "--config" || rest[0] == "-config" {
			return rest[1], true
		}
	}
	return "", false
}

// readUpTo reads f to its end or to max bytes, in as few reads as the
// writer allows: one buffer, grown only for a large spec.
func readUpTo(f *os.File, max int) ([]byte, error) {
	buf := make([]byte, 0, 64<<10)
	for {
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil || len(buf) >= max {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(cap(buf), max-len(buf)))...)[:len(buf)]
		}
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// hasPrefix stands in for strings.HasPrefix: importing strings holds this
// init back until every package whose path sorts before "strings" (all of
// github.com/...) is initialised (TestPrecreatePassthroughInit in
// test/integration checks the order on the built program).
func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
