package profiles

import (
	"strings"
	"testing"
)

func TestPolicyFacts(t *testing.T) {
	cat, err := LoadCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		profile string
		params  map[string]string
		// want lists name=value/type/given/grants for the parameters named.
		want map[string]string
		caps string
	}{
		{"gaming", map[string]string{"input": "true"}, map[string]string{"input": "true/bool/true/true", "display": "none/enum/false/false", "cache-dir": "/var/cache/nvbind/gaming/path/false/false"}, "compute,display,graphics,ngx,utility,video"},
		{"gaming", map[string]string{"input": "no"}, map[string]string{"input": "false/bool/true/false"}, ""},
		{"ml", map[string]string{"cache-dir": "/srv/c"}, map[string]string{"cache-dir": "/srv/c/path/true/false"}, "compute,utility"},
	}
	for _, tt := range tests {
		f, err := cat.PolicyFacts(tt.profile, tt.params)
		if err != nil {
			t.Fatalf("%s: %v", tt.profile, err)
		}
		got := map[string]string{}
		for _, p := range f.Params {
			got[p.Name] = strings.Join([]string{p.Value, p.Type, boolStr(p.Given), boolStr(p.GrantsDevices)}, "/")
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%s %v: %s = %s, want %s", tt.profile, tt.params, k, got[k], v)
			}
		}
		if tt.caps != "" && strings.Join(f.Capabilities, ",") != tt.caps {
			t.Errorf("%s: capabilities %v, want %s", tt.profile, f.Capabilities, tt.caps)
		}
	}
	for _, bad := range []map[string]string{{"nope": "1"}, {"input": "maybe"}, {"cache-dir": "rel"}} {
		if _, err := cat.PolicyFacts("gaming", bad); err == nil {
			t.Errorf("PolicyFacts(gaming, %v) accepted", bad)
		}
	}
	if _, err := cat.PolicyFacts("nope", nil); err == nil {
		t.Error("unknown profile accepted")
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
