package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nvbind/nvbind/internal/ledger"
)

// BenchmarkLedger measures what the ledger adds: a GPU create (device 3 of
// an 8-GPU JSON spec) with the ledger on (the default) over the same
// create with ledger.dir = "", and a delete of a container holding a GPU
// over the same delete with the ledger off. Each round runs both, so the
// difference compares samples taken together. Target: +0.2 ms at p50 for
// each.
func BenchmarkLedger(b *testing.B) {
	build(b)
	on := newFixture(b, "json", "NVIDIA_VISIBLE_DEVICES=3")
	off := *on
	off.config = filepath.Join(filepath.Dir(on.config), "ledger-off.toml")
	cfg, err := os.ReadFile(on.config)
	if err != nil {
		b.Fatal(err)
	}
	ledgerDir := filepath.Join(filepath.Dir(on.config), "ledger")
	offCfg := strings.Replace(string(cfg), fmt.Sprintf("dir = %q", ledgerDir), `dir = ""`, 1)
	if offCfg == string(cfg) {
		b.Fatal("fixture config has no ledger.dir")
	}
	if err := os.WriteFile(off.config, []byte(offCfg), 0o644); err != nil {
		b.Fatal(err)
	}
	// Other entries, as on a busy host: the create reads them all.
	l := ledger.Open(ledgerDir)
	l.Alive = func(*ledger.Entry) bool { return true }
	for i := 0; i < 8; i++ {
		if i == 3 {
			continue
		}
		e := &ledger.Entry{ID: fmt.Sprintf("other-%d", i), Root: "/run/runc", Tenant: "default", PID: os.Getpid(),
			Created: time.Now(),
			Devices: []ledger.Device{{Name: fmt.Sprintf("nvidia.com/gpu=%d", i), Index: fmt.Sprint(i)}}}
		if err := l.Record(e); err != nil {
			b.Fatal(err)
		}
	}
	runtime := filepath.Join(binDir, "nvbind-runtime")
	create := createArgv(on.bundle)
	del := []string{"--root", benchRoot(on.bundle), "--log", filepath.Join(on.bundle, "log.json"), "--log-format", "json", "delete", "bench"}
	envOn := []string{"PATH=/usr/bin:/bin", "NVBIND_CONFIG=" + on.config}
	envOff := []string{"PATH=/usr/bin:/bin", "NVBIND_CONFIG=" + off.config}
	held := func() bool { e, err := l.Get("bench"); return err == nil && e != nil }
	var cOff, cOn, dOff, dOn []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		on.reset(b)
		b.StartTimer()
		cOff = append(cOff, sample(b, envOff, runtime, create...))
		b.StopTimer()
		on.reset(b)
		b.StartTimer()
		cOn = append(cOn, sample(b, envOn, runtime, create...))
		b.StopTimer()
		if !held() {
			b.Fatal("create recorded no ledger entry")
		}
		b.StartTimer()
		dOff = append(dOff, sample(b, envOff, runtime, del...))
		dOn = append(dOn, sample(b, envOn, runtime, del...))
		b.StopTimer()
		if held() {
			b.Fatal("delete did not release the entry")
		}
		b.StartTimer()
	}
	b.ReportMetric(ms(pct(cOff, 0.5)), "create-off-p50-ms")
	b.ReportMetric(ms(pct(cOn, 0.5)), "create-on-p50-ms")
	b.ReportMetric(ms(pct(cOn, 0.5)-pct(cOff, 0.5)), "create-added-p50-ms")
	b.ReportMetric(ms(pct(cOn, 0.95)-pct(cOff, 0.95)), "create-added-p95-ms")
	b.ReportMetric(ms(pct(dOff, 0.5)), "delete-off-p50-ms")
	b.ReportMetric(ms(pct(dOn, 0.5)), "delete-on-p50-ms")
	b.ReportMetric(ms(pct(dOn, 0.5)-pct(dOff, 0.5)), "delete-added-p50-ms")
	b.ReportMetric(ms(pct(dOn, 0.95)-pct(dOff, 0.95)), "delete-added-p95-ms")
}

// BenchmarkLedgerQuota measures the ledger on the policy path: a create
// under a rule with a tenant quota, which reads and checks the tenant's
// seven other live entries, over the same create under the same policy
// without the quota and with the ledger off (both audit).
func BenchmarkLedgerQuota(b *testing.B) {
	build(b)
	base := newFixture(b, "json", "NVIDIA_VISIBLE_DEVICES=3")
	dir := filepath.Dir(base.config)
	cfg, err := os.ReadFile(base.config)
	if err != nil {
		b.Fatal(err)
	}
	ledgerDir := filepath.Join(dir, "ledger")
	audit := fmt.Sprintf("[policy]\naudit-log = %q\n", filepath.Join(dir, "audit", "audit.log"))
	offCfg := strings.Replace(string(cfg), fmt.Sprintf("dir = %q", ledgerDir), `dir = ""`, 1) + audit
	onCfg := string(cfg) + audit + "[[policy.rules]]\nname = \"lab\"\nallow.max-gpus = 8\n"
	off, on := filepath.Join(dir, "quota-off.toml"), filepath.Join(dir, "quota-on.toml")
	os.WriteFile(off, []byte(offCfg), 0o644)
	os.WriteFile(on, []byte(onCfg), 0o644)
	l := ledger.Open(ledgerDir)
	for i := 0; i < 8; i++ {
		if i == 3 {
			continue
		}
		// Alive through their maker, this benchmark's process.
		e := &ledger.Entry{ID: fmt.Sprintf("other-%d", i), Root: "/run/nvbind-bench-none", Tenant: "default", PID: os.Getpid(),
			Created: time.Now(), Devices: []ledger.Device{{Name: fmt.Sprintf("nvidia.com/gpu=%d", i), Index: fmt.Sprint(i)}}}
		if err := l.Record(e); err != nil {
			b.Fatal(err)
		}
	}
	runtime := filepath.Join(binDir, "nvbind-runtime")
	create := createArgv(base.bundle)
	envOn := []string{"PATH=/usr/bin:/bin", "NVBIND_CONFIG=" + on}
	envOff := []string{"PATH=/usr/bin:/bin", "NVBIND_CONFIG=" + off}
	var cOff, cOn []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		base.reset(b)
		b.StartTimer()
		cOff = append(cOff, sample(b, envOff, runtime, create...))
		b.StopTimer()
		base.reset(b)
		b.StartTimer()
		cOn = append(cOn, sample(b, envOn, runtime, create...))
		b.StopTimer()
		if e, err := l.Get("bench"); err != nil || e == nil || e.Rule != "lab" {
			b.Fatalf("create under the quota recorded %+v (%v)", e, err)
		}
		l.Release("bench")
		b.StartTimer()
	}
	b.ReportMetric(ms(pct(cOff, 0.5)), "off-p50-ms")
	b.ReportMetric(ms(pct(cOn, 0.5)), "quota-p50-ms")
	b.ReportMetric(ms(pct(cOn, 0.5)-pct(cOff, 0.5)), "added-p50-ms")
	b.ReportMetric(ms(pct(cOn, 0.95)-pct(cOff, 0.95)), "added-p95-ms")
}
