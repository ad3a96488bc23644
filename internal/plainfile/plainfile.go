// Package plainfile reads files with plain system calls, as os does but
// without what an os.File adds for files the network poller can wait on
// (a non-blocking mode switch and an epoll registration, set up on the
// first open) and without its cleanup: eight system calls and an
// allocation less for each of the two files nvbind-runtime reads on every
// create (config.toml and the spec), which it reads during package init.
// What it returns, errors included, is what os returns.
package plainfile

import (
	"io"
	"io/fs"
	"syscall"
)

// File is a file open for reading.
type File struct {
	fd   int
	name string
}

// Open is os.Open.
func Open(name string) (*File, error) {
	for {
		fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &File{fd: fd, name: name}, nil
	}
}

// Close closes f.
func (f *File) Close() error {
	if err := syscall.Close(f.fd); err != nil {
		return &fs.PathError{Op: "close", Path: f.name, Err: err}
	}
	return nil
}

// Stat is os.File.Stat's size and whether f is a regular file.
func (f *File) Stat() (size int64, regular bool, err error) {
	var st syscall.Stat_t
	if err := f.fstat(&st); err != nil {
		return 0, false, err
	}
	return st.Size, st.Mode&syscall.S_IFMT == syscall.S_IFREG, nil
}

// Read is os.File.Read.
func (f *File) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, err := syscall.Read(f.fd, b)
		if err == syscall.EINTR {
			continue
		}
		return f.result(n, err)
	}
}

// ReadAt is os.File.ReadAt.
func (f *File) ReadAt(b []byte, off int64) (n int, err error) {
	for len(b) > 0 {
		m, e := syscall.Pread(f.fd, b, off)
		if e == syscall.EINTR {
			continue
		}
		if m, e = f.result(m, e); e != nil {
			return n, e
		}
		n += m
		b = b[m:]
		off += int64(m)
	}
	return n, nil
}

// result is os's reading of a read's return: 0 bytes is the end.
func (f *File) result(n int, err error) (int, error) {
	switch {
	case err != nil:
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// ReadFile is os.ReadFile.
func ReadFile(name string) ([]byte, error) {
	f, err := Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, _, err := f.Stat()
	if err != nil {
		size = 0
	}
	return readContents(size, f.Read)
}

// ReadFileStable is ReadFile that also returns the file's stat, taken
// before the read, and reports whether the file kept that stat (size,
// times, inode) through the read: a file changed while it was read may
// not be what the stat describes.
func ReadFileStable(name string) (data []byte, st syscall.Stat_t, stable bool, err error) {
	f, err := Open(name)
	if err != nil {
		return nil, st, false, err
	}
	defer f.Close()
	if err := f.fstat(&st); err != nil {
		return nil, st, false, err
	}
	if data, err = readContents(st.Size, f.Read); err != nil {
		return nil, st, false, err
	}
	var after syscall.Stat_t
	stable = f.fstat(&after) == nil && after.Dev == st.Dev && after.Ino == st.Ino &&
		after.Size == st.Size && after.Mtim == st.Mtim && after.Ctim == st.Ctim
	return data, st, stable, nil
}

// fstat is fstat(2) on f.
func (f *File) fstat(st *syscall.Stat_t) error {
	for {
		err := syscall.Fstat(f.fd, st)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "stat", Path: f.name, Err: err}
		}
		return nil
	}
}

// readContents is os.readFileContents.
func readContents(statSize int64, read func([]byte) (int, error)) ([]byte, error) {
	zeroSize := statSize == 0
	var size int
	if int64(int(statSize)) == statSize {
		size = int(statSize)
	}
	size++ // one byte for final read at EOF
	const minBuf = 512
	if size < minBuf {
		size = minBuf
	}
	data := make([]byte, 0, size)
	for {
		n, err := read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return data, err
		}
		if capRemain := cap(data) - len(data); capRemain == 0 || (zeroSize && capRemain < minBuf) {
			data = append(data, make([]byte, minBuf)...)[:len(data)]
		}
	}
}
