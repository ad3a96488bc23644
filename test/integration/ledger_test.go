package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// addProcGPUs writes proc/driver/nvidia/gpus/<bus>/information for the
// root's GPUs, so that the runtime can tell a GPU's index from its UUID.
func addProcGPUs(t *testing.T, s *SimRoot) {
	t.Helper()
	for i := 0; i < s.GPUs; i++ {
		bus := fmt.Sprintf("0000:%02x:00.0", 16+i)
		dir := filepath.Join(s.Dir, "proc/driver/nvidia/gpus", bus)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		info := fmt.Sprintf("Model: \t\t NVIDIA A100-SXM4-40GB\nIRQ:   \t\t 42\nGPU UUID: \t %s\nBus Location: \t %s\nDevice Minor: \t %d\n", s.UUIDs[i], bus, i)
		if err := os.WriteFile(filepath.Join(dir, "information"), []byte(info), 0o444); err != nil {
			t.Fatal(err)
		}
	}
}

// psView is `nvbind ps --json`.
type psView struct {
	GPUs []struct {
		Index   string `json:"index"`
		UUID    string `json:"uuid"`
		Free    bool   `json:"free"`
		Holders []struct {
			Container string `json:"container"`
			Tenant    string `json:"tenant"`
			Exclusive bool   `json:"exclusive"`
		} `json:"holders"`
	} `json:"gpus"`
	Containers []struct {
		ID     string `json:"id"`
		Tenant string `json:"tenant"`
		GPUs   []struct {
			Index string `json:"index"`
			UUID  string `json:"uuid"`
		} `json:"gpus"`
	} `json:"containers"`
	Free []string `json:"free"`
}

func ps(t *testing.T, s *SimRoot) psView {
	t.Helper()
	res := runCmd(t, s.Env(), bins.CLI, "ps", "--json", "--no-nvml")
	if res.Code != 0 {
		t.Fatalf("nvbind ps: %s", res)
	}
	var v psView
	if err := json.Unmarshal([]byte(res.Stdout), &v); err != nil {
		t.Fatalf("nvbind ps --json: %v\n%s", err, res.Stdout)
	}
	return v
}

// holdings maps container ids to the GPU indices ps says they hold.
func (v psView) holdings() map[string]string {
	out := map[string]string{}
	for _, c := range v.Containers {
		var idx []string
		for _, g := range c.GPUs {
			idx = append(idx, g.Index)
		}
		sort.Strings(idx)
		out[c.ID] = strings.Join(idx, ",")
	}
	return out
}

// longBundle is a bundle whose process records the /dev it sees, then
// sleeps.
func longBundle(t *testing.T, env ...string) *Bundle {
	t.Helper()
	b := newBundle(t, "sh", "-c", "ls /dev > /devices.txt; exec sleep 600")
	b.SetEnv(env...)
	b.Save(t)
	return b
}

var ledgerSeq int

func newID(prefix string) string {
	ledgerSeq++
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), ledgerSeq)
}

// create runs `nvbind-runtime create` for b (as an engine would) and
// deletes the container at the end of the test.
func create(t *testing.T, s *SimRoot, b *Bundle, id string) Result {
	t.Helper()
	t.Cleanup(func() { exec.Command("runc", "--root", s.RunRoot, "delete", "--force", id).Run() })
	return runRuntime(t, s.Env(), "--root", s.RunRoot, "--log", filepath.Join(b.Dir, "runc.log"),
		"--log-format", "json", "create", "--bundle", b.Dir, id)
}

// start creates and starts b as id and returns the GPUs it sees.
func start(t *testing.T, s *SimRoot, b *Bundle, id string) []string {
	t.Helper()
	if res := create(t, s, b, id); res.Code != 0 {
		t.Fatalf("create %s: %s", id, res)
	}
	if res := runRuntime(t, s.Env(), "--root", s.RunRoot, "start", id); res.Code != 0 {
		t.Fatalf("start %s: %s", id, res)
	}
	p := filepath.Join(b.Rootfs(), "devices.txt")
	if !waitFor(10*time.Second, func() bool { data, _ := os.ReadFile(p); return len(data) > 0 }) {
		t.Fatalf("%s did not list /dev", id)
	}
	time.Sleep(50 * time.Millisecond) // ls may still be writing
	return gpuNodes(readFile(t, p))
}

// stopDelete stops and deletes id through nvbind-runtime, as engines do.
func stopDelete(t *testing.T, s *SimRoot, id string) {
	t.Helper()
	runRuntime(t, s.Env(), "--root", s.RunRoot, "kill", id, "KILL")
	waitFor(10*time.Second, func() bool { return runcStatus(t, s, id) == "stopped" })
	if res := runRuntime(t, s.Env(), "--root", s.RunRoot, "delete", id); res.Code != 0 {
		t.Fatalf("delete %s: %s", id, res)
	}
}

// runcStatus is runc's status of id ("" when runc does not know it).
func runcStatus(t *testing.T, s *SimRoot, id string) string {
	out, err := exec.Command("runc", "--root", s.RunRoot, "state", id).Output()
	if err != nil {
		return ""
	}
	var st struct {
		Status string `json:"status"`
		Pid    int    `json:"pid"`
	}
	json.Unmarshal(out, &st)
	return st.Status
}

func ledgerPolicy(t *testing.T, s *SimRoot, rules string) string {
	t.Helper()
	cfg, auditLog := policyConfig(t, "workstation", rules)
	s.WriteConfig(t, cfg)
	return auditLog
}

// TestLedgerExclusive: two containers asking for the same exclusive GPU
// (by index, then by UUID): the second is refused with one line naming the
// holder, audited; the first runs on untouched; once it is deleted the GPU
// is given again.
func TestLedgerExclusive(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 4)
	addProcGPUs(t, s)
	auditLog := ledgerPolicy(t, s, "[[policy.rules]]\nname = \"solo\"\nallow.exclusive = [\"0\"]\n")
	first, second := newID("excl-a"), newID("excl-b")
	a := longBundle(t, "NVIDIA_VISIBLE_DEVICES=0")
	if got := start(t, s, a, first); strings.Join(got, " ") != "nvidia0" {
		t.Fatalf("first sees %v", got)
	}
	b := longBundle(t, "NVIDIA_VISIBLE_DEVICES="+s.UUIDs[0])
	before := b.ReadConfig(t)
	res := create(t, s, b, second)
	if res.Code != 1 || strings.Count(strings.TrimSpace(res.Stderr), "\n") > 0 ||
		!strings.Contains(res.Stderr, fmt.Sprintf("policy rule \"solo\" refuses devices nvidia.com/gpu=%s", s.UUIDs[0])) ||
		!strings.Contains(res.Stderr, "GPU 0 ("+s.UUIDs[0]+") is held exclusively by container "+first) {
		t.Fatalf("second create: %s", res)
	}
	if string(b.ReadConfig(t)) != string(before) {
		t.Error("refused create changed config.json")
	}
	if got := containers(t, s.RunRoot); got != first {
		t.Errorf("runc containers %q, want only %s", got, first)
	}
	if st := runcStatus(t, s, first); st != "running" {
		t.Errorf("first container is %q after the refusal", st)
	}
	if h := ps(t, s).holdings(); len(h) != 1 || h[first] != "0" {
		t.Errorf("ledger after refusal: %v", h)
	}
	// Another GPU is still shared and free.
	other := newID("excl-c")
	if got := start(t, s, longBundle(t, "NVIDIA_VISIBLE_DEVICES=1"), other); strings.Join(got, " ") != "nvidia1" {
		t.Errorf("third sees %v", got)
	}
	var refusal map[string]any
	for _, r := range readAudit(t, auditLog) {
		if r["decision"] == "refused" && r["container"] == second {
			refusal = r
		}
	}
	if refusal == nil || !strings.Contains(fmt.Sprint(refusal["reason"]), "held exclusively by container "+first) {
		t.Errorf("refusal not audited: %v", readAudit(t, auditLog))
	}
	stopDelete(t, s, first)
	if got := start(t, s, longBundle(t, "NVIDIA_VISIBLE_DEVICES="+s.UUIDs[0]), second); strings.Join(got, " ") != "nvidia0" {
		t.Errorf("after the holder's delete, second sees %v", got)
	}
}

// TestLedgerQuota: a tenant quota of 2 GPUs across three containers.
func TestLedgerQuota(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 4)
	addProcGPUs(t, s)
	ledgerPolicy(t, s, "[[policy.rules]]\nname = \"lab\"\nallow.max-gpus = 2\n")
	ids := []string{newID("quota-a"), newID("quota-b"), newID("quota-c")}
	for i, id := range ids[:2] {
		start(t, s, longBundle(t, fmt.Sprintf("NVIDIA_VISIBLE_DEVICES=%d", i)), id)
	}
	third := longBundle(t, "NVIDIA_VISIBLE_DEVICES=2")
	before := third.ReadConfig(t)
	res := create(t, s, third, ids[2])
	want := fmt.Sprintf("tenant default is over its quota max-gpus=2: holds 2 (%s: GPU 0; %s: GPU 1) and asks for 1 more", ids[0], ids[1])
	if res.Code != 1 || !strings.Contains(res.Stderr, want) || !strings.Contains(res.Stderr, `policy rule "lab"`) {
		t.Fatalf("third create: %s\nwant %q", res, want)
	}
	if string(third.ReadConfig(t)) != string(before) {
		t.Error("refused create changed config.json")
	}
	// Asking again for a GPU the tenant holds is within the quota.
	if got := start(t, s, longBundle(t, "NVIDIA_VISIBLE_DEVICES=1"), newID("quota-same")); strings.Join(got, " ") != "nvidia1" {
		t.Errorf("same GPU again: %v", got)
	}
	// A delete releases: the third fits now.
	stopDelete(t, s, ids[0])
	third.Save(t)
	if got := start(t, s, third, ids[2]); strings.Join(got, " ") != "nvidia2" {
		t.Errorf("after a delete the third sees %v", got)
	}
	// With the ledger off a quota cannot be checked: creates fail closed.
	s.Ledger = ""
	ledgerPolicy(t, s, "[[policy.rules]]\nname = \"lab\"\nallow.max-gpus = 2\n")
	off := longBundle(t, "NVIDIA_VISIBLE_DEVICES=3")
	if res := create(t, s, off, newID("quota-off")); res.Code != 1 || !strings.Contains(res.Stderr, `policy rule "lab" sets max-gpus or exclusive, which need the ledger, and ledger.dir is empty`) {
		t.Errorf("quota with the ledger off: %s", res)
	}
}

// TestLedgerReclaim: containers removed behind nvbind's back (runc delete
// --force directly; the container's process killed with SIGKILL) leave
// the ledger on its next read.
func TestLedgerReclaim(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 2)
	addProcGPUs(t, s)
	ledgerPolicy(t, s, "[[policy.rules]]\nname = \"solo\"\nallow.exclusive = [\"all\"]\n")
	gone, killed := newID("gone"), newID("killed")
	start(t, s, longBundle(t, "NVIDIA_VISIBLE_DEVICES=0"), gone)
	start(t, s, longBundle(t, "NVIDIA_VISIBLE_DEVICES=1"), killed)
	if h := ps(t, s).holdings(); h[gone] != "0" || h[killed] != "1" {
		t.Fatalf("ledger: %v", h)
	}
	if out, err := exec.Command("runc", "--root", s.RunRoot, "delete", "--force", gone).CombinedOutput(); err != nil {
		t.Fatalf("runc delete: %v %s", err, out)
	}
	out, err := exec.Command("runc", "--root", s.RunRoot, "state", killed).Output()
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Pid int }
	json.Unmarshal(out, &st)
	if err := syscall.Kill(st.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(10*time.Second, func() bool { return runcStatus(t, s, killed) == "stopped" })
	v := ps(t, s)
	if h := v.holdings(); len(h) != 0 {
		t.Errorf("not reclaimed: %v", h)
	}
	if strings.Join(v.Free, " ") != "0 1" {
		t.Errorf("free GPUs %v, want 0 1", v.Free)
	}
	ents, _ := os.ReadDir(s.Ledger)
	for _, e := range ents {
		if e.Name() != ".lock" {
			t.Errorf("ledger file left: %s", e.Name())
		}
	}
	// Both exclusive GPUs can be given again.
	if got := start(t, s, longBundle(t, "NVIDIA_VISIBLE_DEVICES=all"), newID("again")); strings.Join(got, " ") != "nvidia0 nvidia1" {
		t.Errorf("after reclaim: %v", got)
	}
}

// TestLedgerConcurrent: 64 creates at once (GPUs 0-3, shared, one exclusive
// rule for GPU 3 that only one may win), half deleted at once; the ledger
// matches runc's containers at the end, and is empty after the rest go.
func TestLedgerConcurrent(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 4)
	addProcGPUs(t, s)
	ledgerPolicy(t, s, "[[policy.rules]]\nname = \"pool\"\nallow.exclusive = [\"3\"]\n")
	shared := newBundle(t, "sleep", "600")
	const n = 64
	type job struct {
		id, dir string
		gpu     int
		ok      bool
	}
	jobs := make([]*job, n)
	for i := range jobs {
		j := &job{id: fmt.Sprintf("conc-%d-%d", os.Getpid(), i), dir: t.TempDir(), gpu: i % 4}
		var spec rspec.Spec
		data, _ := json.Marshal(shared.Spec)
		json.Unmarshal(data, &spec)
		spec.Root.Path = shared.Rootfs()
		spec.Process.Env = append(spec.Process.Env, fmt.Sprintf("NVIDIA_VISIBLE_DEVICES=%d", j.gpu))
		data, _ = json.Marshal(&spec)
		os.WriteFile(filepath.Join(j.dir, "config.json"), data, 0o644)
		jobs[i] = j
		id := j.id
		t.Cleanup(func() { exec.Command("runc", "--root", s.RunRoot, "delete", "--force", id).Run() })
	}
	outDir := t.TempDir()
	var seq atomic.Int64
	// Output goes to a file: a created container holds its stdio open.
	runtime := func(args ...string) error {
		out, err := os.Create(filepath.Join(outDir, strconv.FormatInt(seq.Add(1), 10)))
		if err != nil {
			return err
		}
		defer out.Close()
		cmd := exec.Command(bins.Runtime, append([]string{"--root", s.RunRoot}, args...)...)
		cmd.Env = append(os.Environ(), s.Env()...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			msg, _ := os.ReadFile(out.Name())
			return fmt.Errorf("%v: %s", err, msg)
		}
		return nil
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	done := make(chan struct{})
	for _, j := range jobs {
		wg.Add(1)
		go func(j *job) {
			defer wg.Done()
			err := runtime("create", "--bundle", j.dir, j.id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				j.ok = true
			case j.gpu == 3 && strings.Contains(err.Error(), "exclusive"):
			default:
				errs = append(errs, j.id+": "+err.Error())
			}
		}(j)
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		t.Fatal("64 concurrent creates did not finish: deadlock?")
	}
	if len(errs) > 0 {
		t.Fatalf("creates failed:\n%s", strings.Join(errs, "\n"))
	}
	winners := 0
	for _, j := range jobs {
		if j.gpu == 3 && j.ok {
			winners++
		}
	}
	if winners != 1 {
		t.Errorf("%d containers got exclusive GPU 3, want exactly 1", winners)
	}
	// Delete every other container at once.
	for i, j := range jobs {
		if i%2 == 0 && j.ok {
			wg.Add(1)
			go func(j *job) {
				defer wg.Done()
				if err := runtime("delete", j.id); err != nil {
					mu.Lock()
					errs = append(errs, j.id+": "+err.Error())
					mu.Unlock()
				}
				j.ok = false
			}(j)
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("deletes failed:\n%s", strings.Join(errs, "\n"))
	}
	want := map[string]string{}
	for _, j := range jobs {
		if j.ok {
			want[j.id] = strconv.Itoa(j.gpu)
		}
	}
	got := ps(t, s).holdings()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ledger %v\nwant %v", got, want)
	}
	var ids []string
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	listed := strings.Fields(containers(t, s.RunRoot))
	sort.Strings(listed)
	if strings.Join(listed, " ") != strings.Join(ids, " ") {
		t.Errorf("runc has %v, ledger %v", listed, ids)
	}
	for _, id := range ids {
		wg.Add(1)
		go func(id string) { defer wg.Done(); runtime("delete", id) }(id)
	}
	wg.Wait()
	if got := ps(t, s).holdings(); len(got) != 0 {
		t.Errorf("ledger not empty after every delete: %v", got)
	}
}

// TestLedgerPsMatches: `nvbind ps --json` says what each container sees.
func TestLedgerPsMatches(t *testing.T) {
	requireRoot(t)
	s := newSimRoot(t, 4)
	addProcGPUs(t, s)
	asks := map[string]string{newID("ps-one"): "0", newID("ps-two"): "1," + s.UUIDs[2], newID("ps-annot"): ""}
	seen := map[string][]string{}
	for id, ask := range asks {
		b := longBundle(t)
		if ask == "" {
			b.Spec.Annotations = map[string]string{"cdi.k8s.io/test": "nvidia.com/gpu=" + s.UUIDs[1]}
			b.Save(t)
		} else {
			b.SetEnv("NVIDIA_VISIBLE_DEVICES=" + ask)
			b.Save(t)
		}
		seen[id] = start(t, s, b, id)
	}
	v := ps(t, s)
	for _, c := range v.Containers {
		var fromLedger []string
		for _, g := range c.GPUs {
			i, _ := strconv.Atoi(g.Index)
			fromLedger = append(fromLedger, "nvidia"+g.Index)
			if g.UUID != s.UUIDs[i] {
				t.Errorf("%s: GPU %s has UUID %q, want %s", c.ID, g.Index, g.UUID, s.UUIDs[i])
			}
		}
		sort.Strings(fromLedger)
		if strings.Join(fromLedger, " ") != strings.Join(seen[c.ID], " ") {
			t.Errorf("%s: ps says %v, the container sees %v", c.ID, fromLedger, seen[c.ID])
		}
		delete(seen, c.ID)
	}
	if len(seen) > 0 {
		t.Errorf("containers missing from ps: %v", seen)
	}
	if strings.Join(v.Free, " ") != "3" {
		t.Errorf("free %v, want 3", v.Free)
	}
	for _, g := range v.GPUs {
		if g.Index == "1" && len(g.Holders) != 2 {
			t.Errorf("GPU 1 holders %+v, want two containers", g.Holders)
		}
	}
	// The text form lists the same.
	res := runCmd(t, s.Env(), bins.CLI, "ps", "--no-nvml")
	if res.Code != 0 || !strings.Contains(res.Stdout, "free: 3") || !strings.Contains(res.Stdout, s.UUIDs[2]) {
		t.Errorf("nvbind ps: %s", res)
	}
}
