package oci

import (
	"io"
	"os"
	"strings"

	"github.com/sirupsen/logrus"
)

// NewLogger returns a logger that writes to runc's --log file (in its
// --log-format, so containerd's shim finds nvbind's "level":"error" lines
// where it looks for runc's) and to nvbind's own log file. It never writes to
// stdout or stderr: during create those are the container's I/O, and
// engines parse the output of other verbs. Files are opened on the first
// message only, so a quiet run costs no I/O.
func NewLogger(a *Args, logFile, level string) *logrus.Logger {
	l := logrus.New()
	var outs []io.Writer
	if a != nil && a.LogPath != "" {
		outs = append(outs, &lazyFile{path: a.LogPath})
	}
	if logFile != "" && (a == nil || logFile != a.LogPath) {
		outs = append(outs, &lazyFile{path: logFile})
	}
	switch len(outs) {
	case 0:
		l.SetOutput(io.Discard)
	case 1:
		l.SetOutput(outs[0])
	default:
		l.SetOutput(io.MultiWriter(outs...))
	}
	if a != nil && a.LogFormat == "json" {
		l.SetFormatter(&logrus.JSONFormatter{})
	} else {
		l.SetFormatter(&logrus.TextFormatter{DisableColors: true, FullTimestamp: true})
	}
	lvl, err := logrus.ParseLevel(strings.ToLower(level))
	if err != nil {
		lvl = logrus.InfoLevel
	}
	l.SetLevel(lvl)
	return l
}

// lazyFile appends to path, opening it on first write. A file that cannot
// be opened swallows the message: logging must never fail a container.
type lazyFile struct {
	path string
	f    *os.File
	err  error
}

func (w *lazyFile) Write(p []byte) (int, error) {
	if w.f == nil && w.err == nil {
		w.f, w.err = os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	}
	if w.err != nil {
		return len(p), nil
	}
	return w.f.Write(p)
}
