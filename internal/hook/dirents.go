package hook

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dirent is one directory entry with the type getdents reports for it
// (unix.DT_UNKNOWN where the file system does not say).
type dirent struct {
	name string
	typ  uint8
}

// readDirents lists the directory open at fd with each entry's type, in
// one getdents64 call per buffer: os.File.ReadDir would take the same
// types, but it lstats an entry of unknown type by a path built from the
// handle's name, which inside a container's rootfs means a host path.
// It refuses more than max entries.
func readDirents(fd int, max int) ([]dirent, error) {
	var out []dirent
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return out, nil
		}
		for b := buf[:n]; len(b) > 0; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
			const nameOff = int(unsafe.Offsetof(unix.Dirent{}.Name))
			if len(b) < nameOff {
				return nil, fmt.Errorf("short directory entry")
			}
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < nameOff || reclen > len(b) {
				return nil, fmt.Errorf("bad directory entry length %d", reclen)
			}
			name := b[nameOff:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			if s := string(name); s != "." && s != ".." {
				if len(out) == max {
					return nil, fmt.Errorf("more than %d entries", max)
				}
				out = append(out, dirent{name: s, typ: b[18]})
			}
			b = b[reclen:]
		}
	}
}
