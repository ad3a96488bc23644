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
	e := func(id string, devs ...Device) *Entry { return &Entry{ID: id, Tenant: "t", Devices: devs} }
	for _, tt := range []struct {
		e    *Entry
		want string
	}{
		{e("abc-1.2_3", gpu(0, false)), "abc-1.2_3@" + hash8("t") + "@" + hash8("GPU-0") + ".json"},
		{e("../x", gpu(0, true), gpu(1, false)), "x-2e2e2f78@" + hash8("t") + "@" + hash8("GPU-0") + "x," + hash8("GPU-1") + ".json"},
		{e("."), "x-2e@" + hash8("t") + "@.json"},
		{e(strings.Repeat("a", 300)), "h-"},
	} {
		got := fileName(tt.e)
		if !strings.HasPrefix(got, tt.want) || len(got) > 255 || strings.Contains(got, "/") {
			t.Errorf("fileName(%.20q) = %q, want %q", tt.e.ID, got, tt.want)
		}
		p := parseName(got)
		if p.id != idPart(tt.e.ID) || p.tenant != hash8("t") || len(p.devs) != len(tt.e.Devices) && !p.any {
			t.Errorf("parseName(%q) = %+v", got, p)
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
	if l.Held("dead") {
		t.Fatal("dead entry not reclaimed")
	}
	if n, _ := readNames(l.Dir()); len(n) != 5 { // .lock, two entries, two links
		t.Fatalf("files left: %v", n)
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

func TestClaim(t *testing.T) {
	l := Open(t.TempDir())
	dead := map[string]bool{}
	l.Alive = func(e *Entry) bool { return !dead[e.ID] }
	claim := func(id, tenant string, max int, devs ...Device) string {
		t.Helper()
		why, err := l.Claim(&Entry{ID: id, Tenant: tenant, Devices: devs}, max)
		if err != nil {
			t.Fatal(err)
		}
		return why
	}
	if why := claim("first", "t", 0, gpu(0, true)); why != "" {
		t.Fatal(why)
	}
	if why := claim("second", "u", 0, gpu(0, false)); !strings.Contains(why, "container first") {
		t.Fatalf("second: %q", why)
	}
	if e, _ := l.Get("second"); e != nil {
		t.Fatal("refused claim was recorded")
	}
	// Quota: t holds GPU 0; one more is allowed, two are not.
	if why := claim("q1", "t", 2, gpu(1, false)); why != "" {
		t.Fatal(why)
	}
	if why := claim("q2", "t", 2, gpu(2, false)); !strings.Contains(why, "max-gpus=2: holds 2 (first: GPU 0; q1: GPU 1)") {
		t.Fatalf("q2: %q", why)
	}
	// A dead holder is reclaimed by the claim that meets it.
	dead["first"] = true
	if why := claim("second", "u", 0, gpu(0, false)); why != "" {
		t.Fatalf("after reclaim: %q", why)
	}
	if e, _ := l.Get("first"); e != nil {
		t.Fatal("dead entry not reclaimed")
	}
	// A retried create replaces its own entry.
	if why := claim("second", "u", 0, gpu(3, false)); why != "" {
		t.Fatal(why)
	}
	if n, _ := l.names(); len(n) != 2 { // q1, second
		t.Fatalf("retried create left %v", n)
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
				why, err := l.Claim(&Entry{ID: id, Tenant: "t", Devices: []Device{gpu(g, true)}}, 0)
				if err != nil {
					errs <- err
					return
				}
				if why == "" {
					break
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
		{"no state, creator alive", Entry{ID: "new", Root: root, PID: self, Created: time.Now()}, true},
		{"no state, pid reused since", Entry{ID: "new", Root: root, PID: self, Created: time.Now().Add(-24 * time.Hour)}, false},
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

func TestWillDelete(t *testing.T) {
	root := t.TempDir()
	self := os.Getpid()
	os.MkdirAll(filepath.Join(root, "run"), 0o755)
	os.WriteFile(filepath.Join(root, "run", "state.json"), []byte(fmt.Sprintf(`{"init_process_pid":%d,"init_process_start":%d}`, self, ProcessStart(self))), 0o644)
	os.MkdirAll(filepath.Join(root, "created"), 0o755)
	os.WriteFile(filepath.Join(root, "created", "state.json"), []byte(fmt.Sprintf(`{"init_process_pid":%d}`, self)), 0o644)
	os.WriteFile(filepath.Join(root, "created", "exec.fifo"), nil, 0o644)
	for _, tt := range []struct {
		id    string
		force bool
		want  bool
	}{{"run", false, false}, {"run", true, true}, {"created", false, true}, {"gone", false, true}} {
		if got := WillDelete(root, tt.id, tt.force); got != tt.want {
			t.Errorf("WillDelete(%s, force=%v) = %v", tt.id, tt.force, got)
		}
	}
}
