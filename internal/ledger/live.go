package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// live.go answers "does this container still exist?" from the low-level
// runtime's state directory, without exec'ing the runtime: runc keeps
// <root>/<id>/state.json (init_process_pid, init_process_start) from the
// end of create until delete; crun keeps <root>/<id>/. A container whose
// init process has died (killed behind the engine's back) holds no GPU any
// more and is reclaimed too: runc cannot restart it, only delete it.

// runcState is the part of runc's state.json read here.
type runcState struct {
	InitPID   int    `json:"init_process_pid"`
	InitStart uint64 `json:"init_process_start"`
}

// LiveInRuntime reports whether e's container exists and its init process
// runs; while the runtime has not written its state yet, whether the
// process that made the entry (the runtime's create) still runs.
func LiveInRuntime(e *Entry) bool {
	if e.Root != "" {
		dir := filepath.Join(e.Root, e.ID)
		data, err := readSmall(filepath.Join(dir, "state.json"))
		switch {
		case err == nil:
			var st runcState
			if json.Unmarshal(data, &st) == nil && st.InitPID > 0 {
				return ProcessAlive(st.InitPID, st.InitStart)
			}
			return true
		case errors.Is(err, fs.ErrNotExist):
			if fi, err := os.Stat(dir); err == nil && fi.IsDir() && !creating(e) {
				// Not runc's layout (crun): the directory is the state.
				return true
			}
		default:
			return true // cannot tell: keep it
		}
	}
	return creating(e)
}

// creating: the process that made e still runs. A pid reused since is
// told apart by its start: the maker started before it wrote the entry
// (clock ticks are 10 ms; a second of slack covers clock steps).
func creating(e *Entry) bool {
	if e.PID <= 0 {
		return false
	}
	start, state, ok := procStat(e.PID)
	if !ok || state == 'Z' || state == 'X' {
		return false
	}
	bt := bootTime()
	if bt.IsZero() || e.Created.IsZero() {
		return true
	}
	started := bt.Add(time.Duration(start) * time.Second / clockTicks)
	return !started.After(e.Created.Add(time.Second))
}

// clockTicks is USER_HZ, 100 on every Linux architecture nvbind runs on.
const clockTicks = 100

var bootOnce struct {
	sync.Once
	t time.Time
}

// bootTime is /proc/stat's btime.
func bootTime() time.Time {
	bootOnce.Do(func() {
		data, err := readSmall("/proc/stat")
		if err != nil {
			return
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
				if n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64); err == nil {
					bootOnce.t = time.Unix(n, 0)
				}
			}
		}
	})
	return bootOnce.t
}

// ProcessAlive reports whether pid runs and, when start is not 0, started
// at start (clock ticks since boot, /proc/<pid>/stat field 22), so that a
// reused pid does not keep a dead container alive. Zombies count as dead.
func ProcessAlive(pid int, start uint64) bool {
	st, state, ok := procStat(pid)
	if !ok || state == 'Z' || state == 'X' {
		return false
	}
	return start == 0 || st == start
}

// ProcessStart is pid's start time (0 when unknown).
func ProcessStart(pid int) uint64 {
	st, _, _ := procStat(pid)
	return st
}

// procStat reads the start time and state of pid.
func procStat(pid int) (uint64, byte, bool) {
	data, err := readSmall("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name may hold spaces and parentheses: fields start
	// after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return 0, 0, false
	}
	fields := bytes.Fields(data[i+2:])
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return 0, 0, false
	}
	st, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return 0, fields[0][0], true
	}
	return st, fields[0][0], true
}

// DefaultRoot is the state directory a runtime uses without --root: runc
// and crun keep /run/<name> as root, $XDG_RUNTIME_DIR/<name> rootless.
func DefaultRoot(runtime string) string {
	name := filepath.Base(runtime)
	if os.Geteuid() != 0 {
		if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
			return filepath.Join(x, name)
		}
	}
	return filepath.Join("/run", name)
}

// WillDelete reports whether the low-level runtime's delete (force or
// not) of container id under root will remove it, so that its entry may go
// now: nvbind-runtime execs the runtime and learns nothing after. runc
// refuses to delete a running container without --force; a created one
// (exec.fifo still in its state dir) or a stopped one it deletes.
func WillDelete(root, id string, force bool) bool {
	if force || root == "" {
		return true
	}
	dir := filepath.Join(root, id)
	data, err := readSmall(filepath.Join(dir, "state.json"))
	if err != nil {
		return true
	}
	var st runcState
	if json.Unmarshal(data, &st) != nil || st.InitPID <= 0 || !ProcessAlive(st.InitPID, st.InitStart) {
		return true
	}
	var stat unix.Stat_t
	return unix.Stat(filepath.Join(dir, "exec.fifo"), &stat) == nil
}
