package policy

import (
	"strings"
	"testing"

	"github.com/nvbind/nvbind/internal/request"
)

// FuzzParse: any config text either compiles or is one error line; never
// a panic. A policy that compiles decides a request.
func FuzzParse(f *testing.F) {
	f.Add(namespaceRules)
	f.Add("[policy]\npreset = \"server\"\n")
	f.Add("[policy]\naudit-max-size = \"1MiB\"\nannotation-prefixes = [\"a.io/\"]\n[[policy.rules]]\nallow.path-prefixes = [\"/run/user/<uid>/\"]\n")
	f.Add("[[policy.rules]]\nmatch = { caller-uids = [\"0-10\"], privileged = true }\nallow = { devices = [\"0:1\", \"mig\"], max-devices = 2 }\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := Parse([]byte(text))
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(text, "\n\n") {
				// go-toml quotes the offending text; only check ours.
				if strings.HasPrefix(err.Error(), "policy") {
					t.Fatalf("multi-line error: %q", err)
				}
			}
			return
		}
		d, err := p.Decide(&Identity{Namespace: "ns", CallerUID: 1000}, req(request.SourceEnv, kind+"=0"), nil)
		if err != nil || d.Outcome == "" {
			t.Fatalf("Decide: %+v %v", d, err)
		}
	})
}

// FuzzMatch: a rule built from fuzzed match values never panics, an empty
// match matches everyone, and matching is deterministic.
func FuzzMatch(f *testing.F) {
	f.Add("team-*", "1000-1999", "gold", "team-a", uint32(1500), "gold", false)
	f.Add("[", "x", "", "", uint32(0), "", true)
	f.Fuzz(func(t *testing.T, ns, uids, ann, idNS string, uid uint32, idAnn string, priv bool) {
		text := "[[policy.rules]]\nname = \"r\"\nmatch.namespaces = [" + quote(ns) + "]\nmatch.caller-uids = [" + quote(uids) +
			"]\nmatch.annotations = { \"k\" = " + quote(ann) + " }\nmatch.privileged = " + map[bool]string{true: "true", false: "false"}[priv] + "\n"
		p, err := Parse([]byte(text))
		id := &Identity{Namespace: idNS, CallerUID: uid, Privileged: priv, Annotations: map[string]string{"k": idAnn}}
		if err == nil {
			a, b := p.rules[0].match.matches(id), p.rules[0].match.matches(id)
			if a != b {
				t.Fatal("matching is not deterministic")
			}
			if a && (idNS == "" || id.Privileged != priv) {
				t.Fatalf("matched without a namespace or with another privilege: %+v", id)
			}
		}
		var empty matcher
		if !empty.matches(id) {
			t.Fatal("an empty match does not match")
		}
	})
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteString(`\` + string(c))
		case c < 0x20 || c == 0x7f:
			b.WriteString(" ")
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
