package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nvbind/nvbind/internal/audit"
	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/profiles"
	"github.com/nvbind/nvbind/internal/request"
)

const kind = "nvidia.com/gpu"

func mustParse(t *testing.T, text string) *Policy {
	t.Helper()
	p, err := Parse([]byte(text))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, text)
	}
	return p
}

// TestPresets checks every embedded preset loads, ends with a catch-all
// rule and is documented.
func TestPresets(t *testing.T) {
	doc, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	if got := Presets(); strings.Join(got, ",") != "server,workstation" {
		t.Fatalf("Presets() = %v", got)
	}
	for _, name := range Presets() {
		t.Run(name, func(t *testing.T) {
			p := mustParse(t, "[policy]\npreset = \""+name+"\"\n")
			if len(p.Rules()) == 0 || PresetDescription(name) == "" {
				t.Fatalf("preset %s: rules %v, description %q", name, p.Rules(), PresetDescription(name))
			}
			if !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("docs/policy.md does not describe preset %s", name)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct{ text, want string }{
		{"[policy]\npreset = \"lab\"\n", `policy.preset "lab" is not one of server, workstation`},
		{"[policy]\naudit-log = \"var/log/x\"\n", "policy.audit-log"},
		{"[policy]\naudit-max-size = \"1\"\n", "policy.audit-max-size"},
		{"[policy]\naudit-keep = -1\n", "policy.audit-keep"},
		{"[policy]\nannotation-prefixes = [\"evil\"]\n", "policy.annotation-prefixes"},
		{"[[policy.rules]]\nname = \"a b\"\n", `policy.rules[0] (a b): name: "a b" is not a name`},
		{"[[policy.rules]]\nname = \"x\"\n[[policy.rules]]\nname = \"x\"\n", `policy.rules[1] (x): name "x" used twice`},
		{"[[policy.rules]]\nmatch.caller-uids = [\"10-1\"]\n", `policy.rules[0]: match.caller-uids: "10-1" is not an id`},
		{"[[policy.rules]]\nmatch.caller-groups = [\"no-such-group-nvbind\"]\n", `match.caller-groups: group "no-such-group-nvbind"`},
		{"[[policy.rules]]\nmatch.namespaces = [\"[\"]\n", "match.namespaces"},
		{"[[policy.rules]]\nmatch.engines = [\"lxc\"]\n", "match.engines"},
		{"[[policy.rules]]\nallow.devices = [\"../0\"]\n", "allow.devices"},
		{"[[policy.rules]]\nallow.devices = [\"void\"]\n", "allow.devices"},
		{"[[policy.rules]]\nallow.devices = [\"none\"]\n", "allow.devices"},
		{"[[policy.rules]]\nallow.devices = [\"0,1\"]\n", "allow.devices"},
		{"[[policy.rules]]\nallow.max-devices = -2\n", "allow.max-devices"},
		{"[[policy.rules]]\nallow.max-gpus = -1\n", "allow.max-gpus"},
		{"[[policy.rules]]\nallow.exclusive = [\"some\"]\n", "allow.exclusive"},
		{"[[policy.rules]]\nallow.exclusive = [\"0,1\"]\n", "allow.exclusive"},
		{"[[policy.rules]]\nallow.kinds = [\"nic\"]\n", "allow.kinds"},
		{"[[policy.rules]]\nallow.capabilities = [\"root\"]\n", "allow.capabilities"},
		{"[[policy.rules]]\nallow.profiles = [\"../x\"]\n", "allow.profiles"},
		{"[[policy.rules]]\nallow.path-prefixes = [\"tmp\"]\n", "allow.path-prefixes"},
		{"[[policy.rules]]\nallow.path-prefixes = [\"/a/../b\"]\n", "allow.path-prefixes"},
		{"[[policy.rules]]\nmatch.typo = 1\n", `unknown key "policy.rules.match.typo"`},
		{"[[policy.rules]]\nallow.env-requests = \"yes\"\n", "policy.rules.allow.env-requests"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Parse([]byte(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func req(source request.Source, devices ...string) *request.Request {
	return &request.Request{Source: source, Devices: devices, Capabilities: []string{"compute", "utility"}}
}

func boolp(b bool) *bool { return &b }

const namespaceRules = `
[policy]
preset = "server"

[[policy.rules]]
name = "team-a"
match.namespaces = ["team-a"]
allow.max-devices = 1

[[policy.rules]]
name = "lab-users"
match.caller-uids = ["1000-1999"]
allow = { env-requests = true, devices = ["0", "1", "mig"], capabilities = ["compute", "utility"] }

[[policy.rules]]
name = "gold"
match.annotations = { "example.com/tier" = "gold", "example.com/owner" = "*" }
match.engines = ["podman"]
allow = { env-requests = true, kinds = ["example.com/fpga"] }
`

func TestDecide(t *testing.T) {
	work := mustParse(t, "[policy]\npreset = \"workstation\"\n")
	server := mustParse(t, "[policy]\npreset = \"server\"\n")
	off, err := Load(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	rules := mustParse(t, namespaceRules)
	tests := []struct {
		name    string
		p       *Policy
		id      Identity
		req     *request.Request
		outcome Outcome
		rule    string
		reason  string
		caps    string
	}{
		{"off: env all", off, Identity{}, req(request.SourceEnv, kind+"=all"), Allowed, "default", "", ""},
		{"off: other vendor through env", off, Identity{}, req(request.SourceEnv, "amd.com/gpu=0"), Refused, "default", "may name only nvidia.com/gpu devices", ""},
		{"off: other vendor through annotation", off, Identity{}, req(request.SourceAnnotation, "amd.com/gpu=0"), Allowed, "default", "", ""},
		{"off: MIG kind through env", off, Identity{}, req(request.SourceEnv, "nvidia.com/mig-1g.10gb=0"), Allowed, "default", "", ""},
		{"workstation: env all", work, Identity{}, req(request.SourceEnv, kind+"=all"), Allowed, "workstation", "", ""},
		{"server: unprivileged env all", server, Identity{}, req(request.SourceEnv, kind+"=all"), Refused, "server", "NVIDIA_VISIBLE_DEVICES requests are not allowed for an unprivileged container", ""},
		{"server: privileged env all", server, Identity{Privileged: true}, req(request.SourceEnv, kind+"=all"), Allowed, "server:privileged", "", ""},
		{"server: annotation", server, Identity{}, req(request.SourceAnnotation, kind+"=1"), Allowed, "server", "", ""},
		{"server: volume mount", server, Identity{}, req(request.SourceVolumeMount, kind+"=1"), Allowed, "server", "", ""},
		{"server: driver only from env", server, Identity{}, req(request.SourceEnv, kind+"=driver"), Refused, "server", "not allowed", ""},
		{"namespace limit 1 ok", rules, Identity{Namespace: "team-a"}, req(request.SourceAnnotation, kind+"=3"), Allowed, "team-a", "", ""},
		{"namespace limit 2 refused", rules, Identity{Namespace: "team-a"}, req(request.SourceAnnotation, kind+"=0", kind+"=1"), Refused, "team-a", "2 devices are more than the 1 allowed", ""},
		{"namespace limit all refused", rules, Identity{Namespace: "team-a"}, req(request.SourceAnnotation, kind+"=all"), Refused, "team-a", "device all is more than", ""},
		{"other namespace falls to preset", rules, Identity{Namespace: "team-b"}, req(request.SourceAnnotation, kind+"=0", kind+"=1"), Allowed, "server", "", ""},
		{"caller uid rule env ok", rules, Identity{CallerUID: 1500}, req(request.SourceEnv, kind+"=1"), Allowed, "lab-users", "", ""},
		{"caller uid rule device not listed", rules, Identity{CallerUID: 1500}, req(request.SourceEnv, kind+"=2"), Refused, "lab-users", "device nvidia.com/gpu=2 is not allowed", ""},
		{"caller uid rule MIG", rules, Identity{CallerUID: 1500}, req(request.SourceEnv, kind+"=MIG-1234abcd"), Allowed, "lab-users", "", ""},
		{"caller uid rule all refused", rules, Identity{CallerUID: 1500}, req(request.SourceEnv, kind+"=all"), Refused, "lab-users", "device all is not allowed", ""},
		{"caller uid outside range", rules, Identity{CallerUID: 2000}, req(request.SourceEnv, kind+"=1"), Refused, "server", "", ""},
		{"caller uid rule narrows caps", rules, Identity{CallerUID: 1000}, &request.Request{Source: request.SourceEnv, Devices: []string{kind + "=0"}, Capabilities: []string{"compute", "display", "graphics", "utility"}},
			Narrowed, "lab-users", "", "compute,utility"},
		{"annotation rule with kind", rules, Identity{Engine: "podman", Annotations: map[string]string{"example.com/tier": "gold", "example.com/owner": "x"}},
			req(request.SourceEnv, "example.com/fpga=0"), Allowed, "gold", "", ""},
		{"annotation rule: value differs", rules, Identity{Engine: "podman", Annotations: map[string]string{"example.com/tier": "silver", "example.com/owner": "x"}},
			req(request.SourceEnv, "example.com/fpga=0"), Refused, "server", "", ""},
		{"annotation rule: key absent", rules, Identity{Engine: "podman", Annotations: map[string]string{"example.com/tier": "gold"}},
			req(request.SourceEnv, "example.com/fpga=0"), Refused, "server", "", ""},
		{"annotation rule: other engine", rules, Identity{Engine: "docker", Annotations: map[string]string{"example.com/tier": "gold", "example.com/owner": "x"}},
			req(request.SourceEnv, "example.com/fpga=0"), Refused, "server", "", ""},
		{"ignored env narrows", work, Identity{}, &request.Request{Source: request.SourceAnnotation, Devices: []string{kind + "=0"}, Ignored: []string{kind + "=all"}},
			Narrowed, "workstation", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.p.Decide(&tt.id, tt.req, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tt.outcome || d.Rule != tt.rule || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("decision %s by %q (%s), want %s by %q (%s)", d.Outcome, d.Rule, d.Reason, tt.outcome, tt.rule, tt.reason)
			}
			if tt.outcome == Refused {
				msg := d.Err().Error()
				if !strings.Contains(msg, `rule "`+tt.rule+`"`) || !strings.Contains(msg, tt.req.Devices[0]) || strings.Contains(msg, "\n") {
					t.Errorf("refusal %q does not name the rule and the request on one line", msg)
				}
			} else if d.Err() != nil {
				t.Errorf("Err() = %v for %s", d.Err(), d.Outcome)
			}
			if tt.caps != "" && strings.Join(tt.req.Capabilities, ",") != tt.caps {
				t.Errorf("capabilities %v, want %s", tt.req.Capabilities, tt.caps)
			}
		})
	}
}

func catalogFacts() ProfileFacts {
	return CatalogFacts(func() (*profiles.Catalog, error) { return profiles.LoadCatalog(config.Default()) })
}

func TestDecideProfiles(t *testing.T) {
	work := mustParse(t, "[policy]\npreset = \"workstation\"\n")
	server := mustParse(t, "[policy]\npreset = \"server\"\n")
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	os.Symlink("/", link)
	serverTmp := mustParse(t, "[policy]\npreset = \"server\"\n[[policy.rules]]\nname = \"tmp\"\nallow.path-prefixes = [\""+dir+"/\"]\n")
	prof := func(name string, params map[string]string) *request.Request {
		return &request.Request{Source: request.SourceAnnotation, Devices: []string{kind + "=0"}, Profile: name, ProfileParams: params, Capabilities: []string{"compute", "utility"}}
	}
	tests := []struct {
		name    string
		p       *Policy
		id      Identity
		req     *request.Request
		outcome Outcome
		reason  string
	}{
		{"workstation cache-dir /", work, Identity{}, prof("ml", map[string]string{"cache-dir": "/"}), Allowed, ""},
		{"server cache-dir /", server, Identity{}, prof("ml", map[string]string{"cache-dir": "/"}), Refused, "profile parameter cache-dir=/ is outside the allowed host paths"},
		{"server cache-dir under the cache", server, Identity{}, prof("ml", map[string]string{"cache-dir": "/var/cache/nvbind/team"}), Allowed, ""},
		{"server cache-dir dot-dot trick", server, Identity{}, prof("ml", map[string]string{"cache-dir": "/var/cache/nvbindx"}), Refused, "outside"},
		{"server symlink to /", serverTmp, Identity{}, prof("ml", map[string]string{"cache-dir": link}), Refused, "outside"},
		{"server path under a symlink", serverTmp, Identity{}, prof("ml", map[string]string{"cache-dir": link + "/etc"}), Refused, "outside"},
		{"server runtime-dir of the caller", server, Identity{CallerUID: 1000}, prof("ml", nil), Allowed, ""},
		{"server gaming not listed", server, Identity{}, prof("gaming", nil), Refused, "profile gaming is not allowed"},
		{"workstation gaming input", work, Identity{}, prof("gaming", map[string]string{"input": "true"}), Allowed, ""},
		{"server gaming input allowed profile", mustParse(t, "[policy]\npreset = \"server\"\n[[policy.rules]]\nallow.profiles = [\"gaming\"]\n"), Identity{},
			prof("gaming", map[string]string{"input": "true"}), Refused, "profile parameter input=true hands over host devices"},
		{"server gaming without input", mustParse(t, "[policy]\npreset = \"server\"\n[[policy.rules]]\nallow.profiles = [\"gaming\"]\n"), Identity{},
			prof("gaming", map[string]string{"input": "false", "runtime-dir": "/run/user/1000"}), Refused, "outside"},
		{"param not listed", mustParse(t, "[policy]\npreset = \"server\"\n[[policy.rules]]\nallow.params = [\"shm-size\"]\n"), Identity{},
			prof("ml", map[string]string{"cache-dir": "/var/cache/nvbind/x"}), Refused, "profile parameter cache-dir is not allowed"},
		{"profile needs a capability not allowed", mustParse(t, "[policy]\npreset = \"workstation\"\n[[policy.rules]]\nallow.capabilities = [\"compute\", \"utility\"]\n"), Identity{},
			prof("gaming", nil), Refused, "profile gaming needs capability display"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.p.Decide(&tt.id, tt.req, catalogFacts())
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tt.outcome || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("decision %s (%s), want %s (%s)", d.Outcome, d.Reason, tt.outcome, tt.reason)
			}
		})
	}
	if _, err := server.Decide(&Identity{}, prof("ml", map[string]string{"nope": "1"}), catalogFacts()); err == nil {
		t.Error("an unknown parameter was not an error")
	}
}

func TestTenant(t *testing.T) {
	for _, tt := range []struct {
		id   Identity
		want string
	}{
		{Identity{Namespace: "team-a", CallerUID: 1000}, "team-a"},
		{Identity{CallerUID: 1000}, "uid.1000"},
		{Identity{}, "default"},
		{Identity{Namespace: ".."}, "default"},
	} {
		if got := tt.id.Tenant().Key; got != tt.want {
			t.Errorf("Tenant(%+v) = %s, want %s", tt.id, got, tt.want)
		}
	}
}

func TestPrepareCaches(t *testing.T) {
	server := mustParse(t, "[policy]\npreset = \"server\"\n[[policy.rules]]\nallow.path-prefixes = [\"/tmp/\"]\n")
	base := t.TempDir()
	os.Chmod(base, 0o755)
	r := &request.Request{Source: request.SourceAnnotation, Devices: []string{kind + "=0"}, Profile: "ml",
		ProfileParams: map[string]string{"cache-dir": base}}
	d, err := server.Decide(&Identity{Namespace: "team-a", ProcessUID: 1234, ProcessGID: 5678}, r, catalogFacts())
	if err != nil || d.Err() != nil {
		t.Fatalf("Decide: %v %v", err, d.Err())
	}
	if err := server.PrepareCaches(d, r); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(base, "team-a")
	if r.ProfileParams["cache-dir"] != want || d.Granted.Params["cache-dir"] != want {
		t.Fatalf("cache-dir = %s, granted %v; want %s", r.ProfileParams["cache-dir"], d.Granted.Params, want)
	}
	fi, err := os.Stat(want)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("tenant dir: %v %v", fi, err)
	}
	if st := fi.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && (st.Uid != 1234 || st.Gid != 5678) {
		t.Errorf("tenant dir owned by %d:%d, want the container user 1234:5678", st.Uid, st.Gid)
	}
	// Again: the directory exists and is reused.
	if err := server.PrepareCaches(d, r); err != nil {
		t.Fatalf("second PrepareCaches: %v", err)
	}
	// A missing base: no directory made, the parameter still points at the
	// tenant's (the optional mount is skipped).
	r2 := &request.Request{Source: request.SourceAnnotation, Devices: []string{kind + "=0"}, Profile: "ml",
		ProfileParams: map[string]string{"cache-dir": filepath.Join(base, "nope")}}
	d2, _ := server.Decide(&Identity{}, r2, catalogFacts())
	if err := server.PrepareCaches(d2, r2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "nope")); !os.IsNotExist(err) {
		t.Errorf("a missing base was created")
	}
	// An existing directory nvbind did not make is refused.
	os.Mkdir(filepath.Join(base, "default"), 0o755)
	r3 := &request.Request{Source: request.SourceAnnotation, Devices: []string{kind + "=0"}, Profile: "ml", ProfileParams: map[string]string{"cache-dir": base}}
	d3, _ := server.Decide(&Identity{}, r3, catalogFacts())
	if err := server.PrepareCaches(d3, r3); err == nil || !strings.Contains(err.Error(), "not a 0700 directory") {
		t.Errorf("PrepareCaches over a foreign dir: %v", err)
	}
}

func TestMapID(t *testing.T) {
	for _, tt := range []struct {
		id    uint32
		table string
		want  uint32
	}{
		{0, "         0          0 4294967295\n", 0},
		{1000, "         0          0 4294967295\n", 1000},
		{0, "         0       1000          1\n         1     100000      65536\n", 1000},
		{5, "         0       1000          1\n         1     100000      65536\n", 100004},
		{70000, "         0       1000          1\n         1     100000      65536\n", 70000},
		{3, "garbage", 3},
	} {
		if got := mapID(tt.id, tt.table); got != tt.want {
			t.Errorf("mapID(%d, %q) = %d, want %d", tt.id, tt.table, got, tt.want)
		}
	}
}

func TestOpenTrail(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o600)
	bad := filepath.Join(notDir, "audit.log")
	var warned []string
	warn := func(f string, a ...any) { warned = append(warned, fmt.Sprintf(f, a...)) }
	server := mustParse(t, "[policy]\npreset = \"server\"\naudit-log = \""+bad+"\"\n")
	if _, err := server.OpenTrail(warn); err == nil || !strings.Contains(err.Error(), "preset server requires the audit log") {
		t.Errorf("server with an unwritable log: %v", err)
	}
	work := mustParse(t, "[policy]\naudit-log = \""+bad+"\"\n")
	tr, err := work.OpenTrail(warn)
	if err != nil || tr.Active() || len(warned) != 1 || !strings.Contains(warned[0], "decision not audited") {
		t.Errorf("workstation with an unwritable log: %v %v %v", err, tr, warned)
	}
	good := filepath.Join(t.TempDir(), "a", "audit.log")
	srv := mustParse(t, "[policy]\npreset = \"server\"\naudit-log = \""+good+"\"\n")
	tr, err = srv.OpenTrail(warn)
	if err != nil || !tr.Active() {
		t.Fatalf("OpenTrail: %v", err)
	}
	id := &Identity{Namespace: "ns"}
	d, _ := srv.Decide(id, req(request.SourceAnnotation, kind+"=0"), nil)
	if err := tr.Record(d, Container{ID: "c1", Bundle: "/b", Before: []byte("a"), After: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	recs, err := audit.Read(audit.Files(good), nil)
	if err != nil || len(recs) != 1 || recs[0].Container != "c1" || recs[0].Tenant.Key != "ns" || recs[0].Granted == nil ||
		recs[0].ConfigBefore != audit.Sum([]byte("a")) || recs[0].ConfigAfter != audit.Sum([]byte("b")) {
		t.Errorf("records = %+v, %v", recs, err)
	}
}

// TestDocExamples compiles every TOML example of docs/policy.md that has
// a [policy] table or rules (group names resolved by a stand-in).
func TestDocExamples(t *testing.T) {
	groups := map[string]uint32{"gpu-users": 1005, "gpu-staff": 2000, "students": 2001}
	lookupGroup = func(name string) (uint32, error) {
		if g, ok := groups[name]; ok {
			return g, nil
		}
		return 0, fmt.Errorf("group %q: unknown", name)
	}
	defer func() { lookupGroup = lookupEtcGroup }()
	doc, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	// config.toml.example's commented-out [policy] table, enabled.
	example, err := os.ReadFile("../../config.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(example), "\n# [policy]\n")
	if !ok {
		t.Fatal("config.toml.example has no commented-out [policy] table")
	}
	var lines []string
	for _, l := range strings.Split("# [policy]\n"+table, "\n") {
		lines = append(lines, strings.TrimPrefix(strings.TrimPrefix(l, "#"), " "))
	}
	if _, err := Parse([]byte(strings.Join(lines, "\n"))); err != nil {
		t.Errorf("config.toml.example's [policy] table: %v", err)
	}
	blocks := strings.Split(string(doc), "```toml\n")[1:]
	if len(blocks) < 4 {
		t.Fatalf("docs/policy.md has %d TOML examples, want the rule reference and three worked examples", len(blocks))
	}
	for i, b := range blocks {
		text, _, _ := strings.Cut(b, "```")
		if !strings.Contains(text, "[policy") {
			continue
		}
		if !strings.Contains(text, "[policy]") {
			text = "[policy]\n" + text
		}
		if _, err := Parse([]byte(text)); err != nil {
			t.Errorf("example %d: %v\n%s", i+1, err, text)
		}
	}
}

func TestQuotaKeys(t *testing.T) {
	p := mustParse(t, `[policy]
[[policy.rules]]
name = "lab"
match.caller-uids = ["1000"]
allow.max-gpus = 2
allow.exclusive = ["1", "GPU-12345678-1234-1234-1234-123456789abc", "0:1"]
[[policy.rules]]
name = "solo"
match.caller-uids = ["1001"]
allow.exclusive = ["all"]
`)
	tests := []struct {
		uid       uint32
		maxGPUs   int
		exclusive map[string]bool // names -> want
		ledger    bool
	}{
		{1000, 2, map[string]bool{"0": false, "1": true, "GPU-12345678-1234-1234-1234-123456789abc": true, "0:1": true, "GPU-x": false}, true},
		{1001, 0, map[string]bool{"0": true, "MIG-x": true}, true},
		{1002, 0, map[string]bool{"0": false}, false},
	}
	for _, tt := range tests {
		d, err := p.Decide(&Identity{CallerUID: tt.uid}, req(request.SourceAnnotation, kind+"=0"), nil)
		if err != nil || d.Outcome == Refused {
			t.Fatalf("uid %d: %+v %v", tt.uid, d, err)
		}
		if d.MaxGPUs != tt.maxGPUs || d.NeedsLedger() != tt.ledger {
			t.Errorf("uid %d: MaxGPUs %d NeedsLedger %v", tt.uid, d.MaxGPUs, d.NeedsLedger())
		}
		for n, want := range tt.exclusive {
			if d.Exclusive(n) != want {
				t.Errorf("uid %d: Exclusive(%s) = %v", tt.uid, n, !want)
			}
		}
	}
}
