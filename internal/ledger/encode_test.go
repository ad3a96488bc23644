package ledger

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestEncodeRoundTrip(t *testing.T) {
	created := time.Date(2026, 12, 1, 5, 40, 0, 123456789, time.UTC)
	for _, e := range []Entry{
		{ID: "abc", Created: created, Devices: []Device{}},
		{ID: "weird \"id\" \\ <&> \x01\n\u2028", Runtime: "/usr/bin/runc", Root: "/run/runc", Bundle: "/b/ü", Tenant: "uid.1000",
			Rule: "lab", Profile: "ml", Created: created, PID: 42,
			Devices: []Device{
				{Name: "nvidia.com/gpu=0", Index: "0", UUID: "GPU-1", Exclusive: true},
				{Name: "nvidia.com/gpu=1:0", Index: "1:0", Parent: "GPU-2", MIG: true},
			}},
	} {
		data := e.appendJSON(nil)
		if !json.Valid(data) {
			t.Fatalf("invalid JSON: %s", data)
		}
		var got Entry
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
		}
		// The same document encoding/json writes, field for field.
		std, _ := json.Marshal(e)
		var a, b map[string]any
		json.Unmarshal(data, &a)
		json.Unmarshal(std, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("hand encoding differs from encoding/json:\n%s\n%s", data, std)
		}
	}
	// Invalid UTF-8 becomes U+FFFD, as with encoding/json.
	var got Entry
	if err := json.Unmarshal((&Entry{ID: "a\xffb", Devices: []Device{}}).appendJSON(nil), &got); err != nil || got.ID != "a\ufffdb" {
		t.Errorf("invalid UTF-8: %q %v", got.ID, err)
	}
}
