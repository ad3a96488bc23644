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
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tidwall/gjson"
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
		fl := Runc
		if len(cwd)%2 == 0 {
			fl = Crun
		}
		a, err := ParseArgs(argv, cwd, fl)
		if !slices.Equal(argv, orig) {
			t.Fatalf("ParseArgs changed its argv: %q -> %q", orig, argv)
		}
		if err != nil {
			return
		}
		if !slices.Equal(a.Argv, orig) {
			t.Fatalf("Argv %q, want the input %q verbatim", a.Argv, orig)
		}
		if a.Intercepts() != ((a.Verb == "create" || a.Verb == "run" || a.Verb == "restore") && !a.Help) {
			t.Fatalf("Intercepts() = %v for verb %q", a.Intercepts(), a.Verb)
		}
		if a.Intercepts() && (!filepath.IsAbs(a.Bundle) || !filepath.IsAbs(a.Config) || a.ContainerID == "") {
			t.Fatalf("bundle %q, config %q, ID %q of %s", a.Bundle, a.Config, a.ContainerID, a.Verb)
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
		read, err := ReadSpec(filepath.Join(dir, SpecFile))
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

// FuzzLeafCodec: the hand-written codec of the members nvbind edits reads
// what encoding/json reads into runtime-spec types (whenever it accepts the
// input) and writes the bytes json.Marshal writes.
func FuzzLeafCodec(f *testing.F) {
	for kind, seed := range []string{
		`["PATH=/bin","A=\u003c\u2028\ud800","\u00e9"]`,
		`{"cdi.k8s.io/x":"nvidia.com/gpu=0","b":"<&>"}`,
		`{"uid":1,"gid":2,"umask":18,"additionalGids":[5,6],"username":"u"}`,
		`[{"type":"RLIMIT_NOFILE","hard":1024,"soft":18446744073709551615},null]`,
		`[{"destination":"/proc","type":"proc","source":"proc","options":["nosuid"],"uidMappings":[{"containerID":0,"hostID":1000,"size":1}]}]`,
		`{"prestart":[{"path":"/bin/x","args":["x"],"env":["A=1"],"timeout":-5}],"createContainer":[],"poststop":null}`,
		`[{"path":"/dev/nvidia0","type":"c","major":195,"minor":0,"fileMode":438,"uid":0,"gid":0}]`,
		`[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":195,"minor":-1,"access":"rw"}]`,
	} {
		f.Add(uint8(kind), seed)
	}
	f.Add(uint8(4), `[{"Destination":"/x","DESTINATION":"/y"}]`)
	f.Add(uint8(2), `{"UID":7,"gid":null}`)
	// Keys newer than runtime-spec, which the codec must keep.
	f.Add(uint8(2), `{"uid":1,"x-new":{"a":[1]},"gid":2,"umask":null}`)
	f.Add(uint8(4), `[{"destination":"/m","x-ext":true,"options":["ro"]},{"destination":"/n"}]`)
	f.Add(uint8(5), `{"x-future":[{"path":"/f"}],"prestart":[{"path":"/p","x-ext":1}]}`)
	f.Add(uint8(6), `[{"path":"/dev/a","type":"c","major":1,"minor":2,"x-ext":"e"}]`)
	f.Add(uint8(1), `{"b":"1","a":"2"}`)
	f.Fuzz(func(t *testing.T, kind uint8, data string) {
		if !json.Valid([]byte(data)) {
			return
		}
		switch kind % 8 {
		case 0:
			checkLeaf(t, data, readEnv, appendStrings)
			checkKeep(t, data, readEnv, appendStrings, nil, func(v []string) []string { return append(v, "NVBIND_X=1") })
		case 1:
			checkLeaf(t, data, readAnnotations, appendStringMap)
			checkKeep(t, data, readAnnotations, appendStringMap, nil, func(v map[string]string) map[string]string {
				m := map[string]string{"nvbind.io/x": "y"}
				for k, x := range v {
					m[k] = x
				}
				return m
			})
		case 2:
			checkLeaf(t, data, readUser, appendUser)
			checkKeep(t, data, readUser, appendUser, userFields, func(v rspec.User) rspec.User {
				v.AdditionalGids = append(slices.Clone(v.AdditionalGids), 44)
				return v
			})
		case 3:
			checkLeaf(t, data, readRlimits, writeRlimits)
			checkKeep(t, data, readRlimits, writeRlimits, nil, func(v []rspec.POSIXRlimit) []rspec.POSIXRlimit {
				return append(v, rspec.POSIXRlimit{Type: "RLIMIT_X", Hard: 1, Soft: 1})
			})
		case 4:
			checkLeaf(t, data, readMounts, writeMounts)
			checkKeep(t, data, readMounts, writeMounts, nil, func(v []rspec.Mount) []rspec.Mount {
				return append(v, rspec.Mount{Destination: "/x", Options: []string{"ro"}})
			})
		case 5:
			checkLeaf(t, data, readHooks, appendHooks)
			checkKeep(t, data, readHooks, appendHooks, hooksFields, func(v *rspec.Hooks) *rspec.Hooks {
				h := &rspec.Hooks{}
				if v != nil {
					*h = *v
				}
				h.CreateContainer = append(slices.Clone(h.CreateContainer), rspec.Hook{Path: "/h"})
				return h
			})
		case 6:
			checkLeaf(t, data, readDevices, writeDevices)
			checkKeep(t, data, readDevices, writeDevices, nil, func(v []rspec.LinuxDevice) []rspec.LinuxDevice {
				return append(v, rspec.LinuxDevice{Path: "/dev/x", Type: "c"})
			})
		case 7:
			checkLeaf(t, data, readRules, writeRules)
			checkKeep(t, data, readRules, writeRules, nil, func(v []rspec.LinuxDeviceCgroup) []rspec.LinuxDeviceCgroup {
				return append(v, rspec.LinuxDeviceCgroup{Allow: true, Access: "rw"})
			})
		}
	})
}

func checkLeaf[T any](t *testing.T, data string, read func(*leafReader, gjson.Result) T, write func([]byte, T) []byte) {
	var want T
	wantErr := json.Unmarshal([]byte(data), &want)
	r := &leafReader{}
	got := read(r, gjson.Parse(data))
	if r.Err == nil {
		if wantErr != nil {
			t.Fatalf("accepts what encoding/json refuses (%v): %s", wantErr, data)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodes %s as %#v, encoding/json as %#v", data, got, want)
		}
	}
	if wantErr != nil {
		return
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		return
	}
	if gotJSON := write(nil, want); string(gotJSON) != string(wantJSON) {
		t.Fatalf("encodes %#v as\n%s\nencoding/json as\n%s", want, gotJSON, wantJSON)
	}
}

// checkKeep: what the codec decodes and nvbind then changes (change adds
// to it, as CDI edits do) is written back with everything the codec does
// not know kept: an unchanged member byte for byte, each part read
// (mount, hook, device...) as it was read, and the unknown keys of a top
// object (known: the keys the codec owns) in their order.
func checkKeep[T any](t *testing.T, data string, read func(*leafReader, gjson.Result) T, write func([]byte, T) []byte, known []string, change func(T) T) {
	orig := gjson.Parse(data)
	r := &leafReader{}
	v := read(r, orig)
	if r.Err != nil {
		return
	}
	var k keeper
	canon := write(nil, v)
	k.pair(orig, gjson.ParseBytes(canon))
	if got := k.restore(nil, gjson.ParseBytes(canon), orig, known); string(got) != orig.Raw {
		t.Fatalf("unchanged %s written as %s", orig.Raw, got)
	}
	changed := change(v)
	k.used = nil
	out := k.restore(nil, gjson.ParseBytes(write(nil, changed)), orig, known)
	if !json.Valid(out) {
		t.Fatalf("invalid JSON written: %s", out)
	}
	// The kept document must mean the change to runc, which reads it with
	// encoding/json: equal as encoding/json writes them (an empty list and
	// none are one thing under omitempty, and runc's view cannot tell them
	// apart either).
	r2 := &leafReader{}
	back := read(r2, gjson.ParseBytes(out))
	gotJSON, _ := json.Marshal(back)
	wantJSON, _ := json.Marshal(changed)
	if r2.Err != nil || string(gotJSON) != string(wantJSON) {
		t.Fatalf("%s changed and written as %s reads back as %s (%v), want %s", data, out, gotJSON, r2.Err, wantJSON)
	}
	// What must survive, in order: each element of a list, the members of
	// a top object that the codec does not own.
	var parts []string
	switch {
	case orig.IsArray():
		orig.ForEach(func(_, e gjson.Result) bool { parts = append(parts, e.Raw); return true })
	case orig.IsObject() && known != nil:
		orig.ForEach(func(key, e gjson.Result) bool {
			if !slices.ContainsFunc(known, func(n string) bool { return strings.EqualFold(n, key.Str) }) {
				parts = append(parts, key.Raw+":"+e.Raw)
			}
			return true
		})
	}
	rest := string(out)
	for _, p := range parts {
		i := strings.Index(rest, p)
		if i < 0 {
			t.Fatalf("%s lost or reordered in\n%s\n(from %s)", p, out, data)
		}
		rest = rest[i+len(p):]
	}
}
