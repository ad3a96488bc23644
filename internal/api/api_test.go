package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/sirupsen/logrus"

	"github.com/nvbind/nvbind/internal/audit"
	"github.com/nvbind/nvbind/internal/gpu"
	"github.com/nvbind/nvbind/internal/ledger"
)

const (
	uuid0 = "GPU-00000001-1111-2222-3333-444400000001"
	uuid1 = "GPU-00000002-1111-2222-3333-444400000002"
)

type fakeStats struct{ stats []gpu.Stats }

func (f fakeStats) Stats() ([]gpu.Stats, error) { return f.stats, nil }

// fixture is a server on a real unix socket over a temporary ledger.
type fixture struct {
	l        *ledger.Ledger
	client   *http.Client
	auditLog string
	proc     string
	sock     string
}

func newFixture(t *testing.T, stats gpu.StatsSource) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{l: ledger.Open(filepath.Join(dir, "ledger")), auditLog: filepath.Join(dir, "audit.log"),
		proc: filepath.Join(dir, "proc"), sock: filepath.Join(dir, "run", "api.sock")}
	f.l.Alive = func(*ledger.Entry) bool { return true }
	os.WriteFile(f.auditLog, []byte(`{"decision":"allowed","container":"old"}`+"\n"), 0o644)
	inv := &gpu.Inventory{GPUs: []gpu.GPU{{Index: 0, UUID: uuid0, Name: "NVIDIA A100-SXM4-40GB"}, {Index: 1, UUID: uuid1, Name: "NVIDIA A100-SXM4-40GB"}}}
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := New(Options{Ledger: f.l, Inventory: func() (*gpu.Inventory, error) { return inv, nil }, Stats: stats,
		AuditLog: f.auditLog, ProcRoot: f.proc, Log: log})
	l, cleanup, err := Listen("unix://" + f.sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		cleanup()
		if _, err := os.Stat(f.sock); !os.IsNotExist(err) {
			t.Errorf("socket left behind: %v", err)
		}
	})
	f.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", f.sock)
	}}}
	return f
}

func (f *fixture) get(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := f.client.Get("http://nvbind" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %s %s", path, resp.Status, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func entry(id, tenant string, excl bool, idx ...int) *ledger.Entry {
	e := &ledger.Entry{ID: id, Tenant: tenant, Profile: "ml", Root: "/run/runc", Runtime: "/usr/bin/runc", Bundle: "/b/" + id,
		Created: time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)}
	for _, i := range idx {
		e.Devices = append(e.Devices, ledger.Device{Name: fmt.Sprintf("nvidia.com/gpu=%d", i), Index: fmt.Sprint(i),
			UUID: []string{uuid0, uuid1}[i], Exclusive: excl})
	}
	return e
}

func TestSocket(t *testing.T) {
	f := newFixture(t, nil)
	fi, err := os.Stat(f.sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket: %v %v", fi.Mode(), err)
	}
	// A second server on the same socket is refused; the first stays.
	if _, _, err := Listen("unix://" + f.sock); err == nil || !strings.Contains(err.Error(), "another server") {
		t.Errorf("second Listen: %v", err)
	}
	for _, bad := range []string{"unix://relative", "http://x", "tcp://", "tcp://127.0.0.1:1/x"} {
		if _, _, err := Listen(bad); err == nil {
			t.Errorf("Listen(%q): want an error", bad)
		}
	}
	// Read-only.
	resp, err := f.client.Post("http://nvbind/v1/gpus", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s", resp.Status)
	}
	resp, _ = f.client.Get("http://nvbind/v2/gpus")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v2/gpus: %s", resp.Status)
	}
}

func TestGPUsAndContainers(t *testing.T) {
	f := newFixture(t, nil)
	var empty GPUsResponse
	f.get(t, "/v1/gpus", &empty)
	if len(empty.GPUs) != 2 || strings.Join(empty.Free, " ") != "0 1" || len(empty.GPUs[0].Holders) != 0 {
		t.Fatalf("empty ledger: %+v", empty)
	}
	f.l.Record(entry("c1", "team-a", true, 0))
	f.l.Record(entry("c2", "team-b", false, 1))
	f.l.Record(entry("c3", "team-b", false, 1))
	var g GPUsResponse
	f.get(t, "/v1/gpus", &g)
	if strings.Join(g.Free, " ") != "" || len(g.GPUs) != 2 {
		t.Fatalf("gpus: %+v", g)
	}
	g0, g1 := g.GPUs[0], g.GPUs[1]
	if g0.UUID != uuid0 || len(g0.Holders) != 1 || g0.Holders[0].Container != "c1" || !g0.Holders[0].Exclusive || g0.Holders[0].Tenant != "team-a" {
		t.Errorf("GPU 0: %+v", g0)
	}
	if len(g1.Holders) != 2 || g1.Holders[0].Profile != "ml" {
		t.Errorf("GPU 1: %+v", g1)
	}
	var c ContainersResponse
	f.get(t, "/v1/containers", &c)
	if len(c.Containers) != 3 || c.Containers[0].ID != "c1" || c.Containers[0].GPUs[0].UUID != uuid0 || c.Containers[0].Bundle != "/b/c1" {
		t.Errorf("containers: %+v", c)
	}
}

// readEvent reads the next event of an SSE stream.
func readEvent(r *bufio.Reader) (string, Event, error) {
	var typ string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", Event{}, err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			typ = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			var e Event
			err := json.Unmarshal([]byte(line[len("data: "):]), &e)
			return typ, e, err
		}
	}
}

func TestEvents(t *testing.T) {
	f := newFixture(t, nil)
	resp, err := f.client.Get("http://nvbind/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, ":") {
		t.Fatalf("stream starts with %q", line)
	}
	events := make(chan Event, 8)
	go func() {
		for {
			typ, e, err := readEvent(r)
			if err != nil {
				return // the stream ends with the test
			}
			if typ != e.Type {
				e.Type = "mismatch: event " + typ + ", type " + e.Type
			}
			events <- e
		}
	}()
	next := func() Event {
		select {
		case e := <-events:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		return Event{}
	}
	time.Sleep(100 * time.Millisecond) // the watch is set up
	if err := f.l.Record(entry("c1", "team-a", false, 1)); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Type != "create" || e.Container != "c1" || e.Tenant != "team-a" || len(e.GPUs) != 1 || e.GPUs[0].UUID != uuid1 {
		t.Errorf("create event: %+v", e)
	}
	if err := f.l.Release("c1"); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Type != "delete" || e.Container != "c1" || e.GPUs[0].Index != "1" {
		t.Errorf("delete event: %+v", e)
	}
	rec, _ := json.Marshal(audit.Record{Time: "2026-12-01T06:00:00Z", Decision: "refused", Container: "c9", Rule: "solo",
		Reason: "GPU 0 is held exclusively by container c1", Tenant: audit.Tenant{Key: "uid.1000"}})
	af, _ := os.OpenFile(f.auditLog, os.O_APPEND|os.O_WRONLY, 0)
	af.Write(append(rec, '\n'))
	af.Close()
	if e := next(); e.Type != "refusal" || e.Container != "c9" || e.Rule != "solo" || !strings.Contains(e.Reason, "exclusively") || e.Tenant != "uid.1000" {
		t.Errorf("refusal event: %+v", e)
	}
}

// scrape fetches /metrics and parses it with Prometheus's text parser.
func scrape(t *testing.T, f *fixture) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := f.client.Get("http://nvbind/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// value finds the sample of name whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	fam := fams[name]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.Metric {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				found = found || l.GetName() == k && l.GetValue() == v
			}
			ok = ok && found
		}
		if ok {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	stats := fakeStats{[]gpu.Stats{
		{Index: 0, UUID: uuid0, UtilizationRatio: 0.75, MemoryUsedBytes: 3 << 30, MemoryTotalBytes: 40 << 30, TemperatureC: 61, PowerWatts: 250.5,
			Processes: []gpu.ProcessMemory{{PID: 4242, UsedBytes: 1 << 30}, {PID: 4243, UsedBytes: 2 << 30}, {PID: 999, UsedBytes: 5}}},
		{Index: 1, UUID: uuid1, UtilizationRatio: -1, MemoryUsedBytes: 0, MemoryTotalBytes: 40 << 30, TemperatureC: -1, PowerWatts: -1},
	}}
	f := newFixture(t, stats)
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	f.l.Record(entry(id, "team-a", true, 0))
	for pid, cg := range map[int]string{
		4242: "0::/system.slice/docker-" + id + ".scope\n",
		4243: "12:memory:/kubepods/burstable/pod1/cri-containerd-" + id + "\n0::/x\n",
		999:  "0::/user.slice/user-1000.slice/session-1.scope\n",
	} {
		os.MkdirAll(filepath.Join(f.proc, fmt.Sprint(pid)), 0o755)
		os.WriteFile(filepath.Join(f.proc, fmt.Sprint(pid), "cgroup"), []byte(cg), 0o644)
	}
	fams := scrape(t, f)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"nvbind_container_gpu_info", map[string]string{"container_id": id, "tenant": "team-a", "profile": "ml", "gpu_uuid": uuid0}, 1},
		{"nvbind_gpu_utilization_ratio", map[string]string{"gpu": "0", "uuid": uuid0}, 0.75},
		{"nvbind_gpu_memory_used_bytes", map[string]string{"gpu": "0"}, 3 << 30},
		{"nvbind_gpu_memory_total_bytes", map[string]string{"gpu": "1", "uuid": uuid1}, 40 << 30},
		{"nvbind_gpu_temperature_celsius", map[string]string{"gpu": "0"}, 61},
		{"nvbind_gpu_power_watts", map[string]string{"gpu": "0"}, 250.5},
		{"nvbind_gpu_container_info", map[string]string{"gpu": "0", "container_id": id, "exclusive": "true"}, 1},
		{"nvbind_gpu_free", map[string]string{"gpu": "0"}, 0},
		{"nvbind_gpu_free", map[string]string{"gpu": "1"}, 1},
		{"nvbind_container_gpu_memory_used_bytes", map[string]string{"container_id": id, "gpu_uuid": uuid0}, 3 << 30},
		{"nvbind_containers", nil, 1},
		{"nvbind_nvml_up", nil, 1},
		{"nvbind_ledger_up", nil, 1},
	} {
		got, ok := value(fams, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// Readings NVML does not give are left out, not reported as -1.
	if _, ok := value(fams, "nvbind_gpu_temperature_celsius", map[string]string{"gpu": "1"}); ok {
		t.Error("GPU 1 has a temperature sample though NVML gave none")
	}
}

// TestMetricsWithoutNVML: --no-nvml keeps the ledger metrics.
func TestMetricsWithoutNVML(t *testing.T) {
	f := newFixture(t, nil)
	f.l.Record(entry("c1", "team-a", false, 1))
	fams := scrape(t, f)
	if v, ok := value(fams, "nvbind_container_gpu_info", map[string]string{"container_id": "c1", "gpu_uuid": uuid1}); !ok || v != 1 {
		t.Errorf("no ledger info metric: %v", fams["nvbind_container_gpu_info"])
	}
	for _, name := range []string{"nvbind_gpu_utilization_ratio", "nvbind_nvml_up"} {
		if fams[name] != nil {
			t.Errorf("%s without NVML", name)
		}
	}
}
