package door

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/policy"
	"github.com/nvbind/nvbind/internal/request"
)

// testConfig reads a one-GPU JSON CDI spec from a temp dir.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	spec := `{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"0","containerEdits":{"deviceNodes":[{"path":"/dev/nvidia0","type":"c","major":195,"minor":0}]}}],"containerEdits":{"env":["FROM_SPEC=1"]}}`
	if err := os.WriteFile(filepath.Join(dir, "nvidia.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.CDI.SpecDirs, cfg.CDI.JITSpec = []string{dir}, ""
	cfg.Driver.Root = t.TempDir()
	return cfg
}

func TestEdit(t *testing.T) {
	cfg := testConfig(t)
	log := logrus.New()
	log.SetOutput(io.Discard)
	tests := []struct {
		name    string
		spec    string
		source  string
		edited  bool
		want    []string // in the encoded result
		wantErr string
	}{
		{name: "no request", spec: `{"ociVersion":"1.2.0","process":{"env":["PATH=/bin"]}}`},
		{name: "void", spec: `{"ociVersion":"1.2.0","process":{"env":["NVIDIA_VISIBLE_DEVICES=void"]}}`},
		{name: "env request", spec: `{"ociVersion":"1.2.0","process":{"env":["NVIDIA_VISIBLE_DEVICES=0"]},"x-unknown":[1]}`,
			edited: true, want: []string{`"/dev/nvidia0"`, `FROM_SPEC=1`, `"x-unknown":[1]`}},
		{name: "annotation request", spec: `{"ociVersion":"1.2.0","process":{"env":[]},"annotations":{"cdi.k8s.io/a":"nvidia.com/gpu=0"}}`,
			edited: true, want: []string{`"/dev/nvidia0"`}},
		{name: "unknown GPU", spec: `{"ociVersion":"1.2.0","process":{"env":["NVIDIA_VISIBLE_DEVICES=5"]}}`, wantErr: "gpu=5"},
		{name: "bad value", spec: `{"ociVersion":"1.2.0","process":{"env":["NVIDIA_VISIBLE_DEVICES=../x"]}}`, wantErr: "NVIDIA_VISIBLE_DEVICES"},
		{name: "broken JSON names its source", spec: `{"ociVersion":"1.2.0","process":{"env":["NVIDIA_VISIBLE_DEVICES=0"]}`, source: "bundle /b", wantErr: "bundle /b: invalid config.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, door := range []Kind{Runtime, Precreate, Prestart} {
				res, err := Edit(Call{Door: door, Spec: []byte(tt.spec), Source: tt.source}, cfg, log)
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("%s: err %v, want %q", door, err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", door, err)
				}
				if (res != nil) != tt.edited {
					t.Fatalf("%s: edited %v, want %v", door, res != nil, tt.edited)
				}
				if res == nil {
					continue
				}
				out, err := res.Doc.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				for _, w := range tt.want {
					if !strings.Contains(string(out), w) {
						t.Errorf("%s: result lacks %s:\n%s", door, w, out)
					}
				}
			}
		})
	}
}

// TestHookDoorsRefuseLedgerRules: a rule with a quota or exclusive GPUs
// needs the GPU ledger, which only the runtime door keeps (Hold); a door
// without one refuses the container rather than skip the rule.
func TestHookDoorsRefuseLedgerRules(t *testing.T) {
	cfg := testConfig(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	toml := "[policy]\npreset = \"workstation\"\naudit-log = \"" + filepath.Join(dir, "audit.log") + "\"\n" +
		"[[policy.rules]]\nname = \"solo\"\n[policy.rules.allow]\nexclusive = [\"all\"]\n"
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	withPolicy, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	withPolicy.CDI, withPolicy.Driver = cfg.CDI, cfg.Driver
	log := logrus.New()
	log.SetOutput(io.Discard)
	spec := []byte(`{"ociVersion":"1.2.0","process":{"env":["NVIDIA_VISIBLE_DEVICES=0"]}}`)
	for _, door := range []Kind{Precreate, Prestart} {
		_, err := Edit(Call{Door: door, Spec: spec}, withPolicy, log)
		if err == nil || !strings.Contains(err.Error(), `policy rule "solo" refuses`) || !strings.Contains(err.Error(), "the "+string(door)+" door cannot hold GPUs") {
			t.Errorf("%s: %v", door, err)
		}
	}
	// The runtime door with a Hold gets its GPUs; a failed create releases them.
	held, released := 0, 0
	hold := func(*policy.Decision, *request.Request) (func(), error) { held++; return func() { released++ }, nil }
	res, err := Edit(Call{Door: Runtime, Spec: spec, Hold: hold}, withPolicy, log)
	if err != nil || res == nil || held != 1 {
		t.Fatalf("runtime door: %v, held %d", err, held)
	}
	res.Release()
	bad := []byte(`{"ociVersion":"1.2.0","process":{"env":["NVIDIA_VISIBLE_DEVICES=0","NVIDIA_REQUIRE_CUDA=cuda>=99"]}}`)
	if _, err := Edit(Call{Door: Runtime, Spec: bad, Hold: hold}, withPolicy, log); err == nil || released != 2 {
		t.Errorf("a create failing after the claim: %v, released %d of 2", err, released)
	}
}
