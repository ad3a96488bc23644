package reqscan

import (
	"bytes"
	"testing"
)

func TestMayRequest(t *testing.T) {
	tests := []struct {
		spec string
		want bool
	}{
		{``, false},
		{`{"process":{"env":["PATH=/bin","TERM=xterm"]}}`, false},
		{`{"process":{"env":["NVIDIA_VISIBLE_DEVICES=0"]}}`, true},
		{`{"process":{"env":["NVBIND_PROFILE=ml"]}}`, true},
		{`{"annotations":{"cdi.k8s.io\/x":"nvidia.com/gpu=0"}}`, true},
		{`{"annotations":{"nvbind.io/profile":"ml"}}`, true},
		// The volume-mount list is a request without the env variable.
		{`{"mounts":[{"destination":"/var/run/nvidia-container-devices/0","source":"/dev/null"}]}`, true},
		// Letters spelled as \u escapes: decode to be sure.
		{`{"process":{"env":["\u004eVIDIA_VISIBLE_DEVICES=0"]}}`, true},
		// A marker cut short at the end of the data is none.
		{`{"process":{"env":["NVIDIA_VISIBLE_DEVICE`, false},
		{`nvbind.i`, false},
		{`NVIDIA_VISIBLE`, false},
	}
	for _, tt := range tests {
		if got := MayRequest([]byte(tt.spec)); got != tt.want {
			t.Errorf("MayRequest(%s) = %v, want %v", tt.spec, got, tt.want)
		}
	}
}

// Every marker is found alone, at the start, in the middle and at the end.
func TestEveryMarkerFound(t *testing.T) {
	for _, m := range append(markers[:], `\u`) {
		for _, s := range []string{m, m + "xyz", "xyz" + m, "xyz" + m + "xyz"} {
			if !MayRequest([]byte(s)) {
				t.Errorf("MayRequest(%q) = false", s)
			}
		}
	}
}

func TestMayRequestWith(t *testing.T) {
	tests := []struct {
		spec     string
		prefixes []string
		want     bool
	}{
		{`{"annotations":{"example.com/gpu":"0"}}`, nil, false},
		{`{"annotations":{"example.com/gpu":"0"}}`, []string{"", "other.io/"}, false},
		{`{"annotations":{"example.com/gpu":"0"}}`, []string{"other.io/", "example.com/"}, true},
		{`{"process":{"env":["NVIDIA_VISIBLE_DEVICES=0"]}}`, []string{"example.com/"}, true},
	}
	for _, tt := range tests {
		if got := MayRequestWith([]byte(tt.spec), tt.prefixes); got != tt.want {
			t.Errorf("MayRequestWith(%s, %q) = %v, want %v", tt.spec, tt.prefixes, got, tt.want)
		}
	}
}

func BenchmarkMayRequest(b *testing.B) {
	spec := bytes.Repeat([]byte(`{"process":{"env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin","TERM=xterm"]},"mounts":[{"destination":"/proc","type":"proc"}]},`), 40)
	b.SetBytes(int64(len(spec)))
	for i := 0; i < b.N; i++ {
		if MayRequest(spec) {
			b.Fatal("request")
		}
	}
}
