package inject

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	cdispec "tags.cncf.io/container-device-interface/specs-go"
)

// FuzzDecodeEdits: whatever decodeEdits accepts, encoding/json (strict, as
// the CDI library's schema allows) decodes to the same edits.
func FuzzDecodeEdits(f *testing.F) {
	for _, seed := range []string{
		`{"env":["A=1"],"deviceNodes":[{"path":"/dev/nvidia0","hostPath":"/dev/nvidia0","type":"c","major":195,"minor":0,"fileMode":438,"permissions":"rw","uid":0,"gid":44}]}`,
		`{"mounts":[{"hostPath":"/usr/lib/libcuda.so.1","containerPath":"/usr/lib/libcuda.so.1","options":["ro","nosuid","nodev","rbind","rprivate"],"type":"bind"}]}`,
		`{"hooks":[{"hookName":"createContainer","path":"/usr/bin/nvbind-hook","args":["nvbind-hook","update-ldcache"],"env":["X=\u0031"],"timeout":5}]}`,
		`{"intelRdt":{"closID":"c","l3CacheSchema":"L3:0=f","memBwSchema":"MB:0=50","schemata":["a"],"enableMonitoring":true},"additionalGids":[44,0],"netDevices":[{"hostInterfaceName":"eth1","name":"net1"}]}`,
		`{"env":null,"deviceNodes":[],"intelRdt":null,"additionalGids":[4294967296]}`,
		`{"env":["\ud800x","\u00e9"],"mounts":[{"hostPath":"a","containerPath":"b","options":null}]}`,
		`{"deviceNodes":[{"path":"/dev/x","major":-1,"minor":1e2}]}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data string) {
		if !nestingWithin([]byte(data), maxJSONDepth) || !gjson.Valid(data) {
			return
		}
		got, err := decodeEdits(data)
		var want cdispec.ContainerEdits
		dec := json.NewDecoder(strings.NewReader(data))
		dec.DisallowUnknownFields()
		wantErr := dec.Decode(&want)
		if err != nil {
			return
		}
		if wantErr != nil {
			t.Fatalf("decodeEdits accepts what encoding/json refuses (%v): %s", wantErr, data)
		}
		if !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Fatalf("decodeEdits and encoding/json differ on %s:\n%s\n%s", data, g, w)
		}
	})
}
