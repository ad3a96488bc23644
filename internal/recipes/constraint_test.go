package recipes

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in      string
		release []uint64
		suffix  []string
		bad     bool
	}{
		{in: "1.30", release: []uint64{1, 30}},
		{in: "v1.30.14-eks-3025e55", release: []uint64{1, 30, 14}, suffix: []string{"eks", "3025e55"}},
		{in: "6.8.0-1024-aws", release: []uint64{6, 8, 0}, suffix: []string{"1024", "aws"}},
		{in: "6.14.0-1018-aws-64k", release: []uint64{6, 14, 0}, suffix: []string{"1018", "aws", "64k"}},
		{in: "570.133.20", release: []uint64{570, 133, 20}},
		{in: "580.82.07", release: []uint64{580, 82, 7}},
		{in: "96.00.BC.00.01", release: []uint64{96, 0}, suffix: []string{"BC", "00", "01"}},
		{in: "1.7.24+k3s1", release: []uint64{1, 7, 24}, suffix: []string{"k3s1"}},
		{in: "8", release: []uint64{8}},
		{in: "6.6.93+", release: []uint64{6, 6, 93}},
		{in: " 12.8 ", release: []uint64{12, 8}},
		{in: "", bad: true},
		{in: "v", bad: true},
		{in: "abc", bad: true},
		{in: "1.", bad: true},
		{in: "1-", bad: true},
		{in: "12abc", bad: true},
		{in: "-1", bad: true},
		{in: "1.2.3.99999999999999999999", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := ParseVersion(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("ParseVersion(%q) = %+v, want an error", tt.in, v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v.Release, tt.release) || !reflect.DeepEqual(v.Suffix, tt.suffix) {
				t.Errorf("ParseVersion(%q) = %v %v, want %v %v", tt.in, v.Release, v.Suffix, tt.release, tt.suffix)
			}
		})
	}
}

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"v1.30.14-eks-3025e55", "1.30", 1},
		{"v1.30.14-eks-3025e55", "1.32.4", -1},
		{"v1.34.2-eks-b3126f4", "1.32", 1},
		{"1.30", "1.30.0", 0},
		{"6.8.0-1024-aws", "6.8", 0}, // the constraint names no flavour
		{"6.8.0-1024-aws", "6.8.0-1020", 1},
		{"6.8.0-1017-aws", "6.8.0-1024", -1},
		{"6.14.0-1018-aws-64k", "6.8", 1},
		{"12.10", "12.8", 1}, // versions, not decimals
		{"570.133.20", "570", 1},
		{"535.54.03", "550", -1},
		{"1.0.0-rc1", "1.0.0-2", 1}, // words after numbers
		{"1.0.0-a.b", "1.0.0-a", 1},
	}
	for _, tt := range tests {
		a, err := ParseVersion(tt.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseVersion(tt.b)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Compare(b); got != tt.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := b.Compare(a); got != -tt.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestParseExpr(t *testing.T) {
	tests := []struct {
		expr, typ string
		op, want  string // canonical type and String()
		wantType  string
		err       string
	}{
		{expr: ">= 1.30", op: OpGE, wantType: TypeVersion, want: ">= 1.30"},
		{expr: ">=1.30", op: OpGE, wantType: TypeVersion, want: ">= 1.30"},
		{expr: "  <  6.8.0-1024 ", op: OpLT, wantType: TypeVersion, want: "< 6.8.0-1024"},
		{expr: "ubuntu", op: OpEQ, wantType: TypeString, want: "== ubuntu"},
		{expr: "true", op: OpEQ, wantType: TypeString, want: "== true"},
		{expr: "!= rhel", op: OpNE, wantType: TypeString, want: "!= rhel"},
		{expr: "in 22.04, 24.04", op: OpIn, wantType: TypeVersion, want: "in 22.04, 24.04"},
		{expr: "in ubuntu,rhel", op: OpIn, wantType: TypeString, want: "in ubuntu, rhel"},
		{expr: "=~ ^NVIDIA (H100|H200)", op: OpRegex, wantType: TypeString, want: "=~ ^NVIDIA (H100|H200)"},
		{expr: "> -1.5", op: OpGT, wantType: TypeNumber, want: "> -1.5"},
		{expr: "<= 10", typ: TypeNumber, op: OpLE, wantType: TypeNumber, want: "<= 10"},
		{expr: "== 24.04", typ: TypeString, op: OpEQ, wantType: TypeString, want: "== 24.04"},
		{expr: "inside", op: OpEQ, wantType: TypeString, want: "== inside"},
		{expr: "", err: "no value"},
		{expr: ">=", err: "no value"},
		{expr: "in ", err: "needs a list"},
		{expr: "in", err: "needs a list"},
		{expr: "in a,,b", err: "empty alternative"},
		{expr: ">= abc", err: "needs a version or a number"},
		{expr: ">= 1.2", typ: TypeString, err: "needs a version or a number"},
		{expr: ">= abc", typ: TypeNumber, err: "not a number"},
		{expr: "== x", typ: TypeVersion, err: "not a version"},
		{expr: "=~ (", err: "missing closing )"},
		{expr: "=~ a", typ: TypeVersion, err: "regex compares strings"},
		{expr: "1", typ: "semver", err: "unknown type"},
	}
	for _, tt := range tests {
		t.Run(tt.expr+"/"+tt.typ, func(t *testing.T) {
			e, err := ParseExpr(tt.expr, tt.typ)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseExpr(%q, %q) error = %v, want one containing %q", tt.expr, tt.typ, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Op != tt.op || e.Type != tt.wantType || e.String() != tt.want {
				t.Errorf("ParseExpr(%q) = op %q type %q %q, want %q %q %q", tt.expr, e.Op, e.Type, e.String(), tt.op, tt.wantType, tt.want)
			}
		})
	}
}

func TestExprEval(t *testing.T) {
	tests := []struct {
		expr, typ, actual string
		want              bool
		err               string
	}{
		{expr: ">= 1.30", actual: "v1.30.14-eks-3025e55", want: true},
		{expr: ">= 1.32.4", actual: "v1.30.14-eks-3025e55", want: false},
		{expr: ">= 5.15", actual: "6.8.0-1024-aws", want: true},
		{expr: ">= 6.8", actual: "6.8.0-1024-aws", want: true},
		{expr: "> 6.8", actual: "6.8.0-1024-aws", want: false},
		{expr: ">= 6.8.0-1025", actual: "6.8.0-1024-aws", want: false},
		{expr: ">= 12.4", actual: "12.10", want: true},
		{expr: ">= 550", actual: "570.133.20", want: true},
		{expr: "< 550", actual: "535.104.05", want: true},
		{expr: ">= 8", actual: "8", want: true},
		{expr: ">= 8", actual: "4", want: false},
		{expr: "== 24.04", actual: "24.04", want: true},
		{expr: "in 22.04, 24.04", actual: "24.04", want: true},
		{expr: "in 22.04, 24.04", actual: "20.04", want: false},
		{expr: "in ubuntu, rhel", actual: "rhel", want: true},
		{expr: "ubuntu", actual: "ubuntu", want: true},
		{expr: "ubuntu", actual: "Ubuntu", want: false},
		{expr: "!= cos", actual: "ubuntu", want: true},
		{expr: "=~ H100", actual: "NVIDIA H100 80GB HBM3", want: true},
		{expr: "=~ ^GB200$", actual: "NVIDIA GB200", want: false},
		{expr: "> 0.5", actual: "0.10", want: true}, // dotted values are versions: 0.10 comes after 0.5
		{expr: "> 0.5", typ: TypeNumber, actual: "0.10", want: false},
		{expr: "> 0.5", typ: TypeNumber, actual: "0.75", want: true},
		{expr: "<= 10", typ: TypeNumber, actual: "1e1", want: true},
		{expr: ">= 1.30", actual: "unknown", err: "not a version"},
		{expr: "> -0.5", actual: "half", err: "not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.expr+"/"+tt.actual, func(t *testing.T) {
			e, err := ParseExpr(tt.expr, tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Eval(tt.actual)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Eval(%q) error = %v, want %q", tt.actual, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("%q on %q = %v, want %v", tt.expr, tt.actual, got, tt.want)
			}
		})
	}
}

// FuzzParseExpr: parsing never panics, a parsed expression prints in a form
// that parses back to the same expression, and evaluating never panics.
func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{">= 1.30", "in 22.04, 24.04", "=~ H100", "ubuntu", "!= 6.8.0-1024-aws", "> -1.5", "in a,,b", "=~ ("} {
		f.Add(s, "v1.30.14-eks-3025e55")
	}
	f.Fuzz(func(t *testing.T, expr, actual string) {
		e, err := ParseExpr(expr, "")
		if err != nil {
			return
		}
		again, err := ParseExpr(e.String(), e.Type)
		if err != nil {
			t.Fatalf("ParseExpr(%q) printed %q, which does not parse: %v", expr, e.String(), err)
		}
		if again.Op != e.Op || again.Type != e.Type || !reflect.DeepEqual(again.Values, e.Values) {
			t.Fatalf("round trip of %q: %+v != %+v", expr, again, e)
		}
		_, _ = e.Eval(actual)
	})
}

// FuzzParseVersion: parsing never panics and comparison is antisymmetric
// and reflexive.
func FuzzParseVersion(f *testing.F) {
	for _, s := range [][2]string{
		{"v1.30.14-eks-3025e55", "1.30"}, {"6.8.0-1024-aws", "6.8.0-1020"}, {"96.00.BC.00.01", "96"},
		{"1.0.0-rc1", "1.0.0-2"}, {"", "v"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, errA := ParseVersion(a)
		vb, errB := ParseVersion(b)
		if errA != nil || errB != nil {
			return
		}
		if va.Compare(va) != 0 {
			t.Fatalf("Compare(%q, itself) != 0", a)
		}
		if ab, ba := va.Compare(vb), vb.Compare(va); ab != -ba {
			t.Fatalf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, ab, b, a, ba)
		}
	})
}
