// Package packaging holds no Go code: its tests check the files the
// packages install (udev rule, pacman hook, AUR PKGBUILD and .SRCINFO)
// where the distribution's own tool is not available here.
package packaging

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// udevToken is one KEY[{attr}]OP"value" of a rule line.
var udevToken = regexp.MustCompile(`^([A-Z_]+)(\{[^}]+\})?(==|!=|\+=|-=|:=|=)"([^"]*)"$`)

// udevMatchKeys may only be compared, udevAssignKeys only assigned; ENV and
// TAG may be both.
var (
	udevMatchKeys  = map[string]bool{"ACTION": true, "SUBSYSTEM": true, "KERNEL": true, "DRIVER": true, "ATTR": true, "DEVPATH": true, "SUBSYSTEMS": true, "DRIVERS": true, "ATTRS": true}
	udevAssignKeys = map[string]bool{"RUN": true, "SYMLINK": true, "OWNER": true, "GROUP": true, "MODE": true}
	udevBothKeys   = map[string]bool{"ENV": true, "TAG": true}
)

// checkUdevLine returns "" when line is a valid udev rule (as far as
// udev's rule syntax goes), else why not.
func checkUdevLine(line string) string {
	var tokens []string
	var cur strings.Builder
	inQuote := false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote = !inQuote
			cur.WriteRune(r)
		case r == ',' && !inQuote:
			tokens = append(tokens, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if inQuote {
		return "unterminated quote"
	}
	tokens = append(tokens, strings.TrimSpace(cur.String()))
	assigns := 0
	for _, tok := range tokens {
		m := udevToken.FindStringSubmatch(tok)
		if m == nil {
			return "bad token " + tok
		}
		key, attr, op := m[1], m[2], m[3]
		match := op == "==" || op == "!="
		switch {
		case udevMatchKeys[key]:
			if !match {
				return key + " can only be matched"
			}
		case udevAssignKeys[key]:
			if match {
				return key + " can only be assigned"
			}
		case udevBothKeys[key]:
		default:
			return "unknown key " + key
		}
		if (key == "ATTR" || key == "ENV" || key == "ATTRS") && attr == "" {
			return key + " needs {name}"
		}
		if !match {
			assigns++
		}
	}
	if assigns == 0 {
		return "rule assigns nothing"
	}
	return ""
}

func TestUdevRuleSyntax(t *testing.T) {
	for _, tt := range []struct {
		line, bad string
	}{
		{`ACTION=="add", SUBSYSTEM=="module", KERNEL=="nvidia", TAG+="systemd"`, ""},
		{`ACTION="add", TAG+="systemd"`, "ACTION can only be matched"},
		{`ACTION=="add", BOGUS=="x", TAG+="systemd"`, "unknown key BOGUS"},
		{`ACTION=="add", ENV="x"`, "ENV needs {name}"},
		{`ACTION=="add", TAG+="systemd`, "unterminated quote"},
		{`ACTION=="add"`, "rule assigns nothing"},
	} {
		if got := checkUdevLine(tt.line); !strings.Contains(got, tt.bad) || (tt.bad == "" && got != "") {
			t.Errorf("%s: %q, want %q", tt.line, got, tt.bad)
		}
	}
	data, err := os.ReadFile("udev/70-nvbind.rules")
	if err != nil {
		t.Fatal(err)
	}
	rules := 0
	for n, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rules++
		if why := checkUdevLine(line); why != "" {
			t.Errorf("70-nvbind.rules:%d: %s", n+1, why)
		}
		if !strings.Contains(line, `ENV{SYSTEMD_WANTS}+="nvbind-cdi-refresh.service"`) {
			t.Errorf("70-nvbind.rules:%d does not start nvbind-cdi-refresh.service", n+1)
		}
	}
	if rules == 0 {
		t.Error("no rules")
	}
}

// ini parses the INI-like files of pacman hooks: section -> key -> values.
func ini(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string][]string{}
	section := ""
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not key = value in a section", path, n+1)
			}
			k = strings.TrimSpace(k)
			out[section][k] = append(out[section][k], strings.TrimSpace(v))
		}
	}
	return out
}

func TestPacmanHook(t *testing.T) {
	h := ini(t, "arch/nvbind-cdi.hook")
	trig, act := h["Trigger"], h["Action"]
	if trig == nil || act == nil {
		t.Fatalf("want [Trigger] and [Action]: %v", h)
	}
	if strings.Join(trig["Type"], ",") != "Package" || !contains(trig["Target"], "nvidia*") ||
		!contains(trig["Operation"], "Upgrade") || !contains(trig["Operation"], "Install") {
		t.Errorf("trigger: %v", trig)
	}
	if strings.Join(act["When"], "") != "PostTransaction" || len(act["Exec"]) != 1 || !strings.Contains(act["Exec"][0], "/usr/bin/nvbind cdi generate") {
		t.Errorf("action: %v", act)
	}
	// The Exec line is run by pacman with no shell of its own.
	if out, err := exec.Command("sh", "-n", "-c", strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(act["Exec"][0], "/bin/sh -c "), "'"), "'")).CombinedOutput(); err != nil {
		t.Errorf("Exec is not valid sh: %v %s", err, out)
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// TestSRCINFOMatchesPKGBUILD: .SRCINFO is what makepkg --printsrcinfo
// prints for the PKGBUILD (makepkg is not on Debian): the PKGBUILD is
// sourced by bash and each field compared.
func TestSRCINFOMatchesPKGBUILD(t *testing.T) {
	script := `set -e; source arch/PKGBUILD
p() { for v in "$@"; do printf '%s\t%s\n' "$F" "$v"; done; }
F=pkgname p "$pkgname"; F=pkgver p "$pkgver"; F=pkgrel p "$pkgrel"; F=pkgdesc p "$pkgdesc"; F=url p "$url"
F=install p "$install"; F=arch p "${arch[@]}"; F=license p "${license[@]}"; F=makedepends p "${makedepends[@]}"
F=depends p "${depends[@]}"; F=optdepends p "${optdepends[@]}"; F=backup p "${backup[@]}"; F=source p "${source[@]}"
F=sha256sums p "${sha256sums[@]}"
for f in build check package; do declare -F $f >/dev/null || { echo "no $f()" >&2; exit 1; }; done`
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("sourcing PKGBUILD: %v\n%s", err, out)
	}
	want := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(l, "\t")
		want[k] = append(want[k], v)
	}
	data, err := os.ReadFile("arch/.SRCINFO")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), " = ")
		if !ok {
			continue
		}
		if k == "pkgbase" {
			k = "pkgname"
		}
		if k == "pkgname" && len(got["pkgname"]) == 1 {
			continue // the pkgname section repeats the base's name
		}
		got[k] = append(got[k], v)
	}
	for k, v := range want {
		if strings.Join(got[k], "|") != strings.Join(v, "|") {
			t.Errorf(".SRCINFO %s = %q, PKGBUILD has %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf(".SRCINFO has %s, the PKGBUILD does not", k)
		}
	}
}
