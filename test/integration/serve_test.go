package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestServe: `nvbind serve` on a unix socket sees a container created and
// deleted through nvbind-runtime on real runc: the events arrive, the JSON
// endpoints and /metrics name it, and `nvbind doctor` finds the server.
func TestServe(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 2)
	addProcGPUs(t, s)
	sock := filepath.Join(t.TempDir(), "api.sock")
	srv := exec.Command(bins.CLI, "serve", "--listen", "unix://"+sock, "--no-nvml")
	srv.Env = append(os.Environ(), s.Env()...)
	srv.Stdout, srv.Stderr = tempOutput(t), tempOutput(t)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() { srv.Process.Kill() })
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	if !waitFor(20*time.Second, func() bool {
		resp, err := client.Get("http://nvbind/v1/gpus")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}) {
		t.Fatal("nvbind serve did not come up")
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode: %v %v", fi.Mode(), err)
	}
	resp, err := client.Get("http://nvbind/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan map[string]any, 8)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e map[string]any
				json.Unmarshal([]byte(data), &e)
				events <- e
			}
		}
	}()
	next := func(typ string) map[string]any {
		t.Helper()
		select {
		case e := <-events:
			if e["type"] != typ {
				t.Fatalf("event %v, want %s", e, typ)
			}
			return e
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s event", typ)
		}
		return nil
	}
	time.Sleep(200 * time.Millisecond)
	id := newID("served")
	start(t, s, longBundle(t, "NVIDIA_VISIBLE_DEVICES=1"), id)
	if e := next("create"); e["container"] != id || !strings.Contains(toJSON(e["gpus"]), s.UUIDs[1]) {
		t.Errorf("create event: %v", e)
	}
	var cs struct {
		Containers []struct {
			ID string `json:"id"`
		} `json:"containers"`
	}
	getJSON(t, client, "/v1/containers", &cs)
	if len(cs.Containers) != 1 || cs.Containers[0].ID != id {
		t.Errorf("/v1/containers: %+v", cs)
	}
	mresp, err := client.Get("http://nvbind/metrics")
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(mresp.Body)
	mresp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range fams["nvbind_container_gpu_info"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		found = found || labels["container_id"] == id && labels["gpu_uuid"] == s.UUIDs[1] && labels["tenant"] == "default"
	}
	if !found {
		t.Errorf("no nvbind_container_gpu_info for %s: %v", id, fams["nvbind_container_gpu_info"])
	}
	res := runCmd(t, s.Env(), bins.CLI, "doctor", "--no-nvml", "--api", "unix://"+sock)
	if !strings.Contains(res.Stdout, "running at unix://"+sock) || !strings.Contains(res.Stdout, "1 live container(s) hold GPUs") {
		t.Errorf("doctor does not report the server:\n%s", res.Stdout)
	}
	stopDelete(t, s, id)
	if e := next("delete"); e["container"] != id {
		t.Errorf("delete event: %v", e)
	}
	srv.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve exited: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left after SIGTERM: %v", err)
	}
	res = runCmd(t, s.Env(), bins.CLI, "doctor", "--no-nvml", "--api", "unix://"+sock)
	if !strings.Contains(res.Stdout, "not running at unix://"+sock) {
		t.Errorf("doctor with the server stopped:\n%s", res.Stdout)
	}
}

func toJSON(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

func getJSON(t *testing.T, c *http.Client, path string, v any) {
	t.Helper()
	resp, err := c.Get("http://nvbind" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
