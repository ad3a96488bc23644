package engines

import (
	"strings"
	"testing"
)

func TestTOMLSet(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		table []string
		key   string
		value string
		want  string
	}{
		{
			name:  "new table appended",
			in:    "# my config\nversion = 2\n",
			table: []string{"a", "b.c"},
			key:   "k",
			value: "x",
			want:  "# my config\nversion = 2\n\n[a.\"b.c\"]  # added by nvbind\nk = \"x\"  # added by nvbind\n",
		},
		{
			name:  "into existing table, after its last key, with its indent",
			in:    "[t]\n  a = 1 # one\n  # trailing comment\n[u]\nb = 2\n",
			table: []string{"t"},
			key:   "k",
			value: "x",
			want:  "[t]\n  a = 1 # one\n  k = \"x\"  # added by nvbind\n  # trailing comment\n[u]\nb = 2\n",
		},
		{
			name:  "existing value changed in place, comment kept",
			in:    "[t]\nk = \"old\" # mine\n",
			table: []string{"t"},
			key:   "k",
			value: "x",
			want:  "[t]\nk = \"x\" # mine\n",
		},
		{
			name:  "already set: untouched",
			in:    "[t]\nk   =   'x'\n",
			table: []string{"t"},
			key:   "k",
			value: "x",
			want:  "[t]\nk   =   'x'\n",
		},
		{
			name:  "quoted table name matches",
			in:    "[plugins.\"io.x\".r]\n",
			table: []string{"plugins", "io.x", "r"},
			key:   "k",
			value: "x",
			want:  "[plugins.\"io.x\".r]\nk = \"x\"  # added by nvbind\n",
		},
		{
			name:  "file without final newline",
			in:    "a = 1",
			table: []string{"t"},
			key:   "k",
			value: "x",
			want:  "a = 1\n\n[t]  # added by nvbind\nk = \"x\"  # added by nvbind\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := parseTOMLDoc([]byte(tt.in), true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.set(tt.table, tt.key, tomlString(tt.value), tt.value); err != nil {
				t.Fatal(err)
			}
			if got := string(d.text); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestTOMLSetRefusesImplicitTable(t *testing.T) {
	// The table exists through a dotted key: a [t.sub] header would redefine
	// it, so set must fail rather than write a broken file.
	d, err := parseTOMLDoc([]byte("[t]\nsub = { a = 1 }\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.set([]string{"t", "sub"}, "k", `"x"`, "x"); err == nil {
		t.Fatalf("set succeeded, text:\n%s", d.text)
	}
}

func TestTOMLArrayRoundTrip(t *testing.T) {
	tests := []string{
		"[engine]\nruntime_supports_json = [\"crun\", \"runc\"]\n",
		"[engine]\nruntime_supports_json = [\n  \"crun\",\n  \"runc\", # the usual\n]\n",
		"[engine]\nruntime_supports_json = []\n",
	}
	for _, in := range tests {
		d, err := parseTOMLDoc([]byte(in), true)
		if err != nil {
			t.Fatal(err)
		}
		changed, err := d.addToArray([]string{"engine"}, "runtime_supports_json", []string{"nvbind", "nvbind-runtime"}, nil)
		if err != nil || !changed {
			t.Fatalf("%q: add: changed=%v err=%v", in, changed, err)
		}
		v, _ := d.value("engine", "runtime_supports_json")
		got, _ := anyStrings(v)
		if len(got) < 2 || got[len(got)-2] != "nvbind" || got[len(got)-1] != "nvbind-runtime" {
			t.Fatalf("%q: after add: %v\n%s", in, got, d.text)
		}
		if changed, _ := d.addToArray([]string{"engine"}, "runtime_supports_json", []string{"nvbind"}, nil); changed {
			t.Errorf("%q: second add changed the file", in)
		}
		if _, err := d.removeFromArray([]string{"engine"}, "runtime_supports_json", []string{"nvbind", "nvbind-runtime"}); err != nil {
			t.Fatal(err)
		}
		if string(d.text) != in {
			t.Errorf("round trip:\n got %q\nwant %q", d.text, in)
		}
	}
}

func TestTOMLRemoveMarkedKeepsUserKeys(t *testing.T) {
	in := "[a]\nx = 1\n\n[a.nvbind]  # added by nvbind\nk = 1  # added by nvbind\nmine = 2\n\n[b]  # added by nvbind\nk = 1  # added by nvbind\n"
	d, err := parseTOMLDoc([]byte(in), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.removeMarked(); err != nil {
		t.Fatal(err)
	}
	want := "[a]\nx = 1\n\n[a.nvbind]  # added by nvbind\nmine = 2\n"
	if string(d.text) != want {
		t.Errorf("got %q\nwant %q", d.text, want)
	}
}

func TestTOMLParseError(t *testing.T) {
	_, err := parseTOMLDoc([]byte("a = 1\n[t\n"), true)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want one naming line 2", err)
	}
}
