package ledger

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func gpu(i int, excl bool) Device {
	return Device{Name: fmt.Sprintf("nvidia.com/gpu=%d", i), Index: fmt.Sprint(i), UUID: fmt.Sprintf("GPU-%d", i), Exclusive: excl}
}

func TestConflict(t *testing.T) {
	live := []Entry{
		{ID: "a", Tenant: "t1", Devices: []Device{gpu(0, true)}},
		{ID: "b", Tenant: "t1", Devices: []Device{gpu(1, false)}},
		{ID: "c", Tenant: "t2", Devices: []Device{gpu(2, false)}},
		{ID: "m", Tenant: "t3", Devices: []Device{{Name: "nvidia.com/gpu=3:0", Index: "3:0", MIG: true, Parent: "GPU-3", Exclusive: true}}},
	}
	tests := []struct {
		name string
		e    Entry
		max  int
		want string // substring; "" = allowed
	}{
		{"free GPU", Entry{ID: "x", Tenant: "t2", Devices: []Device{gpu(3, false)}}, 0, ""},
		{"exclusively held", Entry{ID: "x", Tenant: "t2", Devices: []Device{gpu(0, false)}}, 0, "GPU 0 (GPU-0) is held exclusively by container a"},
		{"exclusive wanted, shared held", Entry{ID: "x", Tenant: "t2", Devices: []Device{gpu(1, true)}}, 0, "exclusive under this rule and already held by container b"},
		{"shared with shared", Entry{ID: "x", Tenant: "t2", Devices: []Device{gpu(2, false)}}, 0, ""},
		{"MIG apart from parent", Entry{ID: "x", Tenant: "t2", Devices: []Device{gpu(3, true)}}, 0, ""},
		{"same MIG", Entry{ID: "x", Tenant: "t2", Devices: []Device{{Index: "3:0", MIG: true}}}, 0, "MIG 3:0 is held exclusively by container m"},
		{"own id ignored", Entry{ID: "a", Tenant: "t1", Devices: []Device{gpu(0, true)}}, 0, ""},
		{"quota reached", Entry{ID: "x", Tenant: "t1", Devices: []Device{gpu(2, false)}}, 2, "tenant t1 is over its quota max-gpus=2: holds 2 (a: GPU 0; b: GPU 1) and asks for 1 more"},
		{"quota: held GPU again", Entry{ID: "x", Tenant: "t1", Devices: []Device{gpu(1, false)}}, 2, ""},
		{"quota other tenant", Entry{ID: "x", Tenant: "t2", Devices: []Device{gpu(3, false)}}, 2, ""},
		{"quota of nothing held", Entry{ID: "x", Tenant: "t9", Devices: []Device{gpu(3, false), gpu(4, false)}}, 1, "holds nothing and asks for 2 more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Conflict(live, &tt.e, tt.max)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFileName(t *testing.T) {
	for id, want := range map[string]string{
		"abc-1.2_3": "abc-1.2_3.json", "../x": "x-2e2e2f78.json", ".": "x-2e.json", "a/b": "x-612f62.json", "": "x-.json",
	} {
		if got := fileName(id); got != want {
			t.Errorf("fileName(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestRecordListRelease(t *testing.T) {
	l := Open(filepath.Join(t.TempDir(), "ledger"))
	l.Alive = func(e *Entry) bool { return e.ID != "dead" }
	if got, err := l.List(); err != nil || len(got) != 0 {
		t.Fatalf("empty ledger: %v %v", got, err)
	}
	if err := l.Release("none"); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"one", "dead", "../two"} {
		e := &Entry{ID: id, Tenant: "t", Devices: []Device{gpu(i, false)}, Created: time.Unix(int64(i), 0)}
		if err := l.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.List()
	if err != nil || len(got) != 2 || got[0].ID != "one" || got[1].ID != "../two" {
		t.Fatalf("List = %+v, %v", got, err)
	}
	if _, err := os.Stat(l.EntryPath("dead")); !os.IsNotExist(err) {
		t.Fatalf("dead entry not reclaimed: %v", err)
	}
	if err := l.Release("../two"); err != nil {
		t.Fatal(err)
	}
	if e, _ := l.Get("../two"); e != nil {
		t.Fatal("released entry still there")
	}
	if got, _ := l.List(); len(got) != 1 {
		t.Fatalf("after release: %+v", got)
	}
}

func TestUpdateRefusal(t *testing.T) {
	l := Open(t.TempDir())
	l.Alive = func(*Entry) bool { return true }
	take := func(id string) error {
		return l.Update(func(live []Entry) (*Entry, error) {
			e := &Entry{ID: id, Tenant: "t", Devices: []Device{gpu(0, true)}}
			if why := Conflict(live, e, 0); why != "" {
				return nil, fmt.Errorf("%s", why)
			}
			return e, nil
		})
	}
	if err := take("first"); err != nil {
		t.Fatal(err)
	}
	if err := take("second"); err == nil || !strings.Contains(err.Error(), "container first") {
		t.Fatalf("second: %v", err)
	}
}

// TestConcurrent: 64 creates racing for 8 exclusive GPUs, each released
// by a delete right after; nothing is lost, no GPU is held twice, and the
// ledger ends empty.
func TestConcurrent(t *testing.T) {
	l := Open(t.TempDir())
	l.Alive = func(*Entry) bool { return true }
	var mu sync.Mutex
	holding := map[int]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("c%d", i)
			g := i % 8
			for {
				err := l.Update(func(live []Entry) (*Entry, error) {
					e := &Entry{ID: id, Tenant: "t", Devices: []Device{gpu(g, true)}}
					if why := Conflict(live, e, 0); why != "" {
						return nil, fmt.Errorf("busy: %s", why)
					}
					return e, nil
				})
				if err == nil {
					break
				}
				if !strings.HasPrefix(err.Error(), "busy") {
					errs <- err
					return
				}
				time.Sleep(time.Millisecond)
			}
			mu.Lock()
			if other, ok := holding[g]; ok {
				errs <- fmt.Errorf("GPU %d given to %s while %s holds it", g, id, other)
			}
			holding[g] = id
			mu.Unlock()
			if e, err := l.Get(id); err != nil || e == nil {
				errs <- fmt.Errorf("%s: entry lost: %v", id, err)
			}
			mu.Lock()
			delete(holding, g)
			mu.Unlock()
			if err := l.Release(id); err != nil {
				errs <- err
			}
		}(i)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("deadlock: 64 creates did not finish")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, err := l.List(); err != nil || len(got) != 0 {
		t.Fatalf("ledger not empty at the end: %+v %v", got, err)
	}
}

func TestLiveInRuntime(t *testing.T) {
	root := t.TempDir()
	self := os.Getpid()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := dead.Process.Pid
	writeState := func(id, body string) {
		os.MkdirAll(filepath.Join(root, id), 0o755)
		os.WriteFile(filepath.Join(root, id, "state.json"), []byte(body), 0o644)
	}
	writeState("running", fmt.Sprintf(`{"id":"running","init_process_pid":%d,"init_process_start":%d}`, self, ProcessStart(self)))
	writeState("stopped", fmt.Sprintf(`{"id":"stopped","init_process_pid":%d,"init_process_start":1}`, self))
	os.MkdirAll(filepath.Join(root, "crun-style"), 0o755)
	tests := []struct {
		name string
		e    Entry
		want bool
	}{
		{"runc running", Entry{ID: "running", Root: root}, true},
		{"runc init gone (pid reused)", Entry{ID: "stopped", Root: root}, false},
		{"no state, creator alive", Entry{ID: "new", Root: root, PID: self, PIDStart: ProcessStart(self)}, true},
		{"no state, creator dead", Entry{ID: "new", Root: root, PID: deadPID}, false},
		{"no state, no creator", Entry{ID: "gone", Root: root}, false},
		{"state dir only (crun)", Entry{ID: "crun-style", Root: root}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LiveInRuntime(&tt.e); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}
