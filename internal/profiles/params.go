package profiles

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
)

// Parameter types a data file may declare.
const (
	typeEnum     = "enum"
	typeBool     = "bool"
	typeInt      = "int"
	typeSize     = "size"
	typeDuration = "duration"
	typePath     = "path"
	typeString   = "string"
)

// maxParamLen bounds a parameter value; they come from annotations.
const maxParamLen = 256

// stringValue is what a plain string parameter may hold: enough for model
// tags (llama3.1:70b-instruct-q4_K_M) and X displays (:0), nothing that
// could smuggle a path or an option.
var stringValue = lazyRegexp(`^[A-Za-z0-9][A-Za-z0-9._:+-]*$|^:[0-9]+(\.[0-9]+)?$`)

// checkParamDef validates a declaration and its default.
func checkParamDef(name string, p paramDef) error {
	switch p.Type {
	case typeEnum:
		if len(p.Values) == 0 {
			return fmt.Errorf("parameter %s: enum without values", name)
		}
	case typeBool, typeInt, typeSize, typeDuration, typePath, typeString:
		if len(p.Values) != 0 {
			return fmt.Errorf("parameter %s: values are for enum parameters only", name)
		}
	default:
		return fmt.Errorf("parameter %s: unknown type %q (valid: %s)", name, p.Type,
			strings.Join([]string{typeBool, typeDuration, typeEnum, typeInt, typePath, typeSize, typeString}, ", "))
	}
	if p.Description == "" {
		return fmt.Errorf("parameter %s: missing description", name)
	}
	if p.Default != "" {
		if _, err := normalizeParam(p, p.Default); err != nil {
			return fmt.Errorf("parameter %s: default: %w", name, err)
		}
	}
	return nil
}

// normalizeParam checks v against p and returns its canonical form
// (booleans as true/false, sizes and paths cleaned).
func normalizeParam(p paramDef, v string) (string, error) {
	if len(v) > maxParamLen {
		return "", fmt.Errorf("value is longer than %d characters", maxParamLen)
	}
	if p.Auto && v == "auto" {
		return v, nil
	}
	switch p.Type {
	case typeEnum:
		for _, ok := range p.Values {
			if v == ok {
				return v, nil
			}
		}
		return "", fmt.Errorf("%q is not one of %s", v, strings.Join(withAuto(p, p.Values), ", "))
	case typeBool:
		switch strings.ToLower(v) {
		case "true", "1", "yes", "on":
			return "true", nil
		case "false", "0", "no", "off":
			return "false", nil
		}
		return "", fmt.Errorf("%q is not a boolean (%s)", v, strings.Join(withAuto(p, []string{"true", "false"}), ", "))
	case typeInt:
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil || n == 0 {
			return "", fmt.Errorf("%q is not a positive integer%s", v, autoHint(p))
		}
		return strconv.FormatUint(n, 10), nil
	case typeSize:
		if _, err := parseSize(v); err != nil {
			return "", err
		}
		return v, nil
	case typeDuration:
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			return v, nil
		}
		if _, err := time.ParseDuration(v); err == nil {
			return v, nil
		}
		return "", fmt.Errorf("%q is not a duration (like 5m, 24h) or a number of seconds (-1: forever)", v)
	case typePath:
		if !filepath.IsAbs(v) || filepath.Clean(v) != v || strings.ContainsAny(v, "\x00\n,") {
			return "", fmt.Errorf("%q is not a clean absolute path", v)
		}
		return v, nil
	case typeString:
		if !stringValue().MatchString(v) {
			return "", fmt.Errorf("%q has characters other than letters, digits and . _ : + -", v)
		}
		return v, nil
	}
	return "", fmt.Errorf("unknown parameter type %q", p.Type)
}

func withAuto(p paramDef, vals []string) []string {
	if p.Auto {
		return append(append([]string(nil), vals...), "auto")
	}
	return vals
}

func autoHint(p paramDef) string {
	if p.Auto {
		return " or auto"
	}
	return ""
}

// maxSize keeps sizes far from overflow; no GPU or /dev/shm is an EiB.
const maxSize = int64(1) << 50

// parseSize reads 8GiB, 64m, 1.5G, 1073741824 (binary units, as Docker's
// --shm-size does).
func parseSize(v string) (int64, error) {
	n, err := units.RAMInBytes(v)
	if err != nil || n <= 0 || n > maxSize {
		return 0, fmt.Errorf("%q is not a size (like 512MiB, 8GiB)", v)
	}
	return n, nil
}

// resolveParams merges the declared parameters with the given values:
// unknown names and bad values are errors that list what is valid.
func resolveParams(profile string, decl map[string]paramDef, given map[string]string) (map[string]string, []ParamValue, error) {
	names := make([]string, 0, len(decl))
	for n := range decl {
		names = append(names, n)
	}
	sort.Strings(names)
	for k := range given {
		if _, ok := decl[k]; !ok {
			valid := "none"
			if len(names) > 0 {
				valid = strings.Join(names, ", ")
			}
			return nil, nil, fmt.Errorf("profile %s: unknown parameter %q (valid: %s)", profile, k, valid)
		}
	}
	vals := map[string]string{}
	var list []ParamValue
	for _, n := range names {
		p := decl[n]
		v, src := p.Default, "default"
		if g, ok := given[n]; ok {
			norm, err := normalizeParam(p, g)
			if err != nil {
				return nil, nil, fmt.Errorf("profile %s: parameter %s: %w", profile, n, err)
			}
			v, src = norm, "annotation "+ParamAnnotationPrefix+n
		}
		vals[n] = v
		list = append(list, ParamValue{Name: n, Value: v, Source: src, Description: p.Description})
	}
	return vals, list, nil
}

// expand replaces ${name} with parameter values. Every ${...} must name a
// declared parameter; a "$" not followed by "{" is kept as it is.
func expand(s string, vals map[string]string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		name := s[i+2 : i+j]
		v, ok := vals[name]
		if !ok {
			return "", fmt.Errorf("%q refers to unknown parameter %q", s, name)
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

// refs returns the parameter names s refers to.
func refs(s string) []string {
	var out []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return out
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return out
		}
		out = append(out, s[i+2:i+j])
		s = s[i+j+1:]
	}
}
