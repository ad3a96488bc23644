package oci

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/specconv"
)

// FuzzParseArgs: the argv an engine passes is handed on to runc verbatim;
// parsing it must never panic or change it, and must find the bundle of
// every create/run.
func FuzzParseArgs(f *testing.F) {
	for _, argv := range []string{
		"--root\x00/run/runc\x00--log\x00/b/log.json\x00--log-format\x00json\x00create\x00--bundle\x00/b\x00--pid-file\x00/b/pid\x00id",
		"--root=/run/runc\x00run\x00-b\x00rel/bundle\x00--console-socket\x00/s\x00--\x00id",
		"--systemd-cgroup\x00--debug\x00create\x00--bundle=/b\x00--preserve-fds\x003\x00id",
		"state\x00id",
		"--version",
		"features",
		"--log",
		"create\x00--bundle",
	} {
		f.Add(argv, "/run/bundle")
	}
	f.Fuzz(func(t *testing.T, joined, cwd string) {
		argv := strings.Split(joined, "\x00")
		if !filepath.IsAbs(cwd) {
			cwd = "/" + cwd
		}
		orig := slices.Clone(argv)
		a, err := ParseArgs(argv, cwd)
		if !slices.Equal(argv, orig) {
			t.Fatalf("ParseArgs changed its argv: %q -> %q", orig, argv)
		}
		if err != nil {
			return
		}
		if !slices.Equal(a.Argv, orig) {
			t.Fatalf("Argv %q, want the input %q verbatim", a.Argv, orig)
		}
		if a.Intercepts() != (a.Verb == "create" || a.Verb == "run") {
			t.Fatalf("Intercepts() = %v for verb %q", a.Intercepts(), a.Verb)
		}
		if a.Intercepts() && !filepath.IsAbs(a.Bundle) {
			t.Fatalf("bundle %q of %s is not absolute", a.Bundle, a.Verb)
		}
		if !a.Intercepts() && a.Bundle != "" {
			t.Fatalf("bundle %q for verb %q", a.Bundle, a.Verb)
		}
	})
}

// FuzzLoadSpec: config.json is written by whoever made the bundle. Loading
// it must never panic; what loads must survive the write nvbind-runtime
// does (checked in memory: an fsync per input would starve the fuzzer),
// what it decodes must be what runc would read (runcView: encoding/json into
// runtime-spec types), and MayRequest must never hide a request.
func FuzzLoadSpec(f *testing.F) {
	example := specconv.Example()
	example.Process.Env = append(example.Process.Env, "NVIDIA_VISIBLE_DEVICES=0")
	example.Annotations = map[string]string{"cdi.k8s.io/x": "nvidia.com/gpu=0"}
	data, _ := json.Marshal(example)
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte(`{"ociVersion":"1.2.0","process":null,"annotations":{"a":"b"}}`))
	f.Add([]byte(`{"ociVersion":"1.2.0","PROCESS":{"ENV":["X=1"]},"process":{"env":["Y=2"]}}`))
	f.Add([]byte(`{"ociVersion":"1.2.0"} {"trailing":1}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, SpecFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		// The cheap pre-check never hides a request runc's view holds.
		if probe, err := parseRuncView(data); err == nil && asksForGPU(probe) && !MayRequest(data) {
			t.Fatalf("MayRequest misses a request: %q", data)
		}
		read, err := ReadSpec(dir)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := ParseDocument(read)
		probe, perr := parseRuncView(data)
		if err != nil {
			return
		}
		if perr != nil {
			t.Fatalf("ParseDocument accepts what runc's decoding rejects: %v", perr)
		}
		spec := doc.Spec
		var env []string
		if spec.Process != nil {
			env = spec.Process.Env
		}
		if !reflect.DeepEqual(probe.env(), env) {
			t.Fatalf("runc sees env %q, nvbind %q", probe.env(), env)
		}
		if !reflect.DeepEqual(probe.Annotations, spec.Annotations) {
			t.Fatalf("runc sees annotations %v, nvbind %v", probe.Annotations, spec.Annotations)
		}
		// What nvbind-runtime writes back (WriteDocument's encoding) loads
		// again and is a fixed point.
		b1, err := doc.Marshal()
		if err != nil {
			t.Fatalf("encoding a loaded spec: %v", err)
		}
		again, err := ParseDocument(b1)
		if err != nil {
			t.Fatalf("reloading a written spec: %v", err)
		}
		if b2, _ := again.Marshal(); string(b1) != string(b2) {
			t.Fatalf("write and reload changed the spec:\n%s\n%s", b1, b2)
		}
	})
}

// runcView is what runc reads of the request-bearing parts: encoding/json
// into structs, keys matched case-insensitively, repeats merged.
type runcView struct {
	Process *struct {
		Env []string `json:"env"`
	} `json:"process"`
	Annotations map[string]string `json:"annotations"`
}

func parseRuncView(data []byte) (*runcView, error) {
	var v runcView
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func (v *runcView) env() []string {
	if v.Process == nil {
		return nil
	}
	return v.Process.Env
}

// asksForGPU reports whether runc's view holds anything internal/request
// reads.
func asksForGPU(p *runcView) bool {
	for _, e := range p.env() {
		if strings.HasPrefix(e, "NVIDIA_VISIBLE_DEVICES=") || strings.HasPrefix(e, "NVBIND_PROFILE=") {
			return true
		}
	}
	for k := range p.Annotations {
		if strings.HasPrefix(k, "cdi.k8s.io/") || strings.HasPrefix(k, "nvbind.io/") {
			return true
		}
	}
	return false
}
