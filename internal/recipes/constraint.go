package recipes

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Value types a constraint compares as.
const (
	TypeVersion = "version"
	TypeNumber  = "number"
	TypeString  = "string"
)

// Operators a constraint expression may start with. A bare value means ==.
const (
	OpGE    = ">="
	OpLE    = "<="
	OpGT    = ">"
	OpLT    = "<"
	OpEQ    = "=="
	OpNE    = "!="
	OpIn    = "in"
	OpRegex = "=~"
)

// Expr is a parsed constraint expression such as ">= 1.30", "in ubuntu, rhel"
// or "=~ H100".
type Expr struct {
	Op   string
	Type string
	// Values holds one operand, or the alternatives of `in`.
	Values []string
	re     *regexp.Regexp
}

// ParseExpr parses a constraint expression. typ is "" (inferred from the
// expected value) or one of TypeVersion, TypeNumber, TypeString.
func ParseExpr(s, typ string) (*Expr, error) {
	s = strings.TrimSpace(s)
	e := &Expr{Op: OpEQ}
	rest := s
	// Two-character operators first so ">=" is not read as ">".
	for _, op := range []string{OpGE, OpLE, OpEQ, OpNE, OpRegex, OpGT, OpLT} {
		if strings.HasPrefix(s, op) {
			e.Op, rest = op, s[len(op):]
			break
		}
	}
	if e.Op == OpEQ && rest == s {
		if s == OpIn {
			return nil, fmt.Errorf("constraint %q: in needs a list of values", s)
		}
		if after, ok := strings.CutPrefix(s, "in "); ok {
			e.Op, rest = OpIn, after
		}
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return nil, fmt.Errorf("constraint %q: no value", s)
	}
	if e.Op == OpIn {
		for _, v := range strings.Split(rest, ",") {
			v = strings.TrimSpace(v)
			if v == "" {
				return nil, fmt.Errorf("constraint %q: empty alternative in list", s)
			}
			e.Values = append(e.Values, v)
		}
	} else {
		e.Values = []string{rest}
	}

	switch typ {
	case "":
		e.Type = inferType(e.Values)
	case TypeVersion, TypeNumber, TypeString:
		e.Type = typ
	default:
		return nil, fmt.Errorf("constraint %q: unknown type %q (want version, number or string)", s, typ)
	}

	if e.Op == OpRegex {
		if typ != "" && typ != TypeString {
			return nil, fmt.Errorf("constraint %q: a regex compares strings, not %ss", s, typ)
		}
		e.Type = TypeString
		re, err := regexp.Compile(e.Values[0])
		if err != nil {
			return nil, fmt.Errorf("constraint %q: %w", s, err)
		}
		e.re = re
		return e, nil
	}
	for _, v := range e.Values {
		if err := checkOperand(v, e.Type); err != nil {
			return nil, fmt.Errorf("constraint %q: %w", s, err)
		}
	}
	if e.Type == TypeString && e.ordering() {
		return nil, fmt.Errorf("constraint %q: %s needs a version or a number, %q is neither", s, e.Op, e.Values[0])
	}
	return e, nil
}

// inferType picks version when every operand reads as a version (integers
// included), number for other numerals (-1, 0.5e3), else string.
func inferType(vals []string) string {
	t := TypeVersion
	for _, v := range vals {
		if _, err := ParseVersion(v); err == nil {
			continue
		}
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			t = TypeNumber
			continue
		}
		return TypeString
	}
	return t
}

func checkOperand(v, typ string) error {
	switch typ {
	case TypeVersion:
		if _, err := ParseVersion(v); err != nil {
			return err
		}
	case TypeNumber:
		if _, err := parseNumber(v); err != nil {
			return err
		}
	}
	return nil
}

func parseNumber(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return f, nil
}

func (e *Expr) ordering() bool {
	switch e.Op {
	case OpGE, OpLE, OpGT, OpLT:
		return true
	}
	return false
}

// String gives the expression back in its canonical form.
func (e *Expr) String() string {
	if e.Op == OpIn {
		return OpIn + " " + strings.Join(e.Values, ", ")
	}
	return e.Op + " " + e.Values[0]
}

// Eval checks actual against the expression. A false result comes with the
// reason; an error means actual could not be read as the expression's type.
func (e *Expr) Eval(actual string) (bool, error) {
	actual = strings.TrimSpace(actual)
	switch e.Op {
	case OpRegex:
		return e.re.MatchString(actual), nil
	case OpIn:
		for _, v := range e.Values {
			c, err := compare(actual, v, e.Type)
			if err != nil {
				return false, err
			}
			if c == 0 {
				return true, nil
			}
		}
		return false, nil
	}
	c, err := compare(actual, e.Values[0], e.Type)
	if err != nil {
		return false, err
	}
	switch e.Op {
	case OpGE:
		return c >= 0, nil
	case OpLE:
		return c <= 0, nil
	case OpGT:
		return c > 0, nil
	case OpLT:
		return c < 0, nil
	case OpNE:
		return c != 0, nil
	default:
		return c == 0, nil
	}
}

// compare returns -1, 0 or +1 for actual against expected in type typ.
func compare(actual, expected, typ string) (int, error) {
	switch typ {
	case TypeVersion:
		a, err := ParseVersion(actual)
		if err != nil {
			return 0, fmt.Errorf("actual value %q is not a version", actual)
		}
		b, _ := ParseVersion(expected)
		return a.Compare(b), nil
	case TypeNumber:
		a, err := parseNumber(actual)
		if err != nil {
			return 0, fmt.Errorf("actual value %q is not a number", actual)
		}
		b, _ := parseNumber(expected)
		switch {
		case a < b:
			return -1, nil
		case a > b:
			return 1, nil
		}
		return 0, nil
	default:
		return strings.Compare(actual, expected), nil
	}
}

// Version is a dotted release number with an optional build or flavour
// suffix: v1.30.14-eks-3025e55 is release [1 30 14] with suffix
// [eks 3025e55]; 6.8.0-1024-aws is [6 8 0] with [1024 aws].
type Version struct {
	Release []uint64
	Suffix  []string
}

// ParseVersion reads an optional "v", one or more dot-separated numbers,
// then an optional suffix introduced by one of "-+_~.".
func ParseVersion(s string) (Version, error) {
	var v Version
	rest := strings.TrimSpace(s)
	if len(rest) > 0 && (rest[0] == 'v' || rest[0] == 'V') {
		rest = rest[1:]
	}
	for {
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 0 {
			if len(v.Release) == 0 {
				return Version{}, fmt.Errorf("%q is not a version", s)
			}
			// "1.2.x": the dot already consumed belongs to the suffix.
			rest = "." + rest
			break
		}
		num, err := strconv.ParseUint(rest[:n], 10, 64)
		if err != nil {
			return Version{}, fmt.Errorf("%q is not a version: %w", s, err)
		}
		v.Release = append(v.Release, num)
		rest = rest[n:]
		if len(rest) > 1 && rest[0] == '.' {
			rest = rest[1:]
			continue
		}
		break
	}
	// A trailing "+" marks a locally built kernel (COS: 6.6.93+).
	if rest == "" || rest == "+" {
		return v, nil
	}
	if !strings.ContainsRune("-+_~.", rune(rest[0])) || len(rest) == 1 {
		return Version{}, fmt.Errorf("%q is not a version", s)
	}
	v.Suffix = strings.FieldsFunc(rest, func(r rune) bool { return strings.ContainsRune("-+_~.", r) })
	if len(v.Suffix) == 0 {
		return Version{}, fmt.Errorf("%q is not a version", s)
	}
	return v, nil
}

// Compare orders v against o: release numbers first (missing ones count as
// 0, so 1.30 == 1.30.0); then, only when both carry a suffix, the suffixes
// token by token (numbers numerically, before words). A constraint without
// a suffix thus ignores the node's flavour: ">= 6.8" accepts 6.8.0-1024-aws.
func (v Version) Compare(o Version) int {
	n := max(len(v.Release), len(o.Release))
	for i := range n {
		a, b := at(v.Release, i), at(o.Release, i)
		if a != b {
			return cmp3(a < b)
		}
	}
	if len(v.Suffix) == 0 || len(o.Suffix) == 0 {
		return 0
	}
	for i := 0; i < len(v.Suffix) && i < len(o.Suffix); i++ {
		if c := compareToken(v.Suffix[i], o.Suffix[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(v.Suffix) < len(o.Suffix):
		return -1
	case len(v.Suffix) > len(o.Suffix):
		return 1
	}
	return 0
}

func at(r []uint64, i int) uint64 {
	if i < len(r) {
		return r[i]
	}
	return 0
}

func cmp3(less bool) int {
	if less {
		return -1
	}
	return 1
}

func compareToken(a, b string) int {
	na, ea := strconv.ParseUint(a, 10, 64)
	nb, eb := strconv.ParseUint(b, 10, 64)
	switch {
	case ea == nil && eb == nil:
		if na == nb {
			return 0
		}
		return cmp3(na < nb)
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return strings.Compare(a, b)
}
