package jsonwrite

import (
	"encoding/json"
	"testing"
)

func TestAppendStringIsEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \\ backslash`, "<script>&amp;</script>", "tab\tnew\nline\rcr\bbs\fff",
		"\x00\x01\x1f\x7f", "invalid \xff utf8 \xc3", "line\u2028sep\u2029", "ünïcödé ✓ 🚀",
	} {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("%q: %s, encoding/json %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("a\x00<\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString([]byte("x"), s); string(got[1:]) != string(want) {
			t.Fatalf("%q: %s, encoding/json %s", s, got[1:], want)
		}
	})
}
