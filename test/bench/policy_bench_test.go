package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// BenchmarkPolicyOverhead measures what the `server` policy with auditing
// adds to a GPU create (a device plugin's CDI annotation on an 8-GPU JSON
// spec) over the same create with no [policy] table. Each round runs both,
// so the difference compares samples taken together. Target: +0.3 ms.
func BenchmarkPolicyOverhead(b *testing.B) {
	build(b)
	off := newFixture(b, "json")
	var spec rspec.Spec
	if err := json.Unmarshal(off.spec, &spec); err != nil {
		b.Fatal(err)
	}
	spec.Annotations = map[string]string{"cdi.k8s.io/nvidia-device-plugin": "nvidia.com/gpu=3",
		"io.kubernetes.cri.sandbox-namespace": "team-a", "io.kubernetes.cri.sandbox-name": "trainer-0"}
	off.spec, _ = json.MarshalIndent(&spec, "", "\t")
	off.reset(b)
	on := *off
	on.config = filepath.Join(filepath.Dir(off.config), "server.toml")
	auditLog := filepath.Join(filepath.Dir(off.config), "audit", "audit.log")
	cfg, err := os.ReadFile(off.config)
	if err != nil {
		b.Fatal(err)
	}
	policy := fmt.Sprintf("[policy]\npreset = \"server\"\naudit-log = %q\n[[policy.rules]]\nname = \"team-a\"\nmatch.namespaces = [\"team-a\"]\nallow.max-devices = 2\n", auditLog)
	if err := os.WriteFile(on.config, append(cfg, policy...), 0o644); err != nil {
		b.Fatal(err)
	}
	argv := createArgv(off.bundle)
	runtime := filepath.Join(binDir, "nvbind-runtime")
	envOff := []string{"PATH=/usr/bin:/bin", "NVBIND_CONFIG=" + off.config}
	envOn := []string{"PATH=/usr/bin:/bin", "NVBIND_CONFIG=" + on.config}
	var offs, ons []time.Duration
	check := func() {
		if data, _ := os.ReadFile(filepath.Join(off.bundle, "config.json")); !strings.Contains(string(data), "/dev/nvidia3") {
			b.Fatal("GPU request was not injected")
		}
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		off.reset(b)
		b.StartTimer()
		offs = append(offs, sample(b, envOff, runtime, argv...))
		b.StopTimer()
		check()
		off.reset(b)
		b.StartTimer()
		ons = append(ons, sample(b, envOn, runtime, argv...))
		b.StopTimer()
		check()
		b.StartTimer()
	}
	if _, err := os.Stat(auditLog); err != nil {
		b.Fatalf("no audit log: %v", err)
	}
	b.ReportMetric(ms(pct(offs, 0.5)), "off-p50-ms")
	b.ReportMetric(ms(pct(offs, 0.95)), "off-p95-ms")
	b.ReportMetric(ms(pct(ons, 0.5)), "server-p50-ms")
	b.ReportMetric(ms(pct(ons, 0.95)), "server-p95-ms")
	b.ReportMetric(ms(pct(ons, 0.5)-pct(offs, 0.5)), "added-p50-ms")
	b.ReportMetric(ms(pct(ons, 0.95)-pct(offs, 0.95)), "added-p95-ms")
}
