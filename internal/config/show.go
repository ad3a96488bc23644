package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/pelletier/go-toml/v2"
)

// Setting is one effective configuration value and where it came from.
type Setting struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
	// Source is "built-in", or "file" for a value set in the config file.
	Source string `json:"source"`
	// Line is the file line that set it (0 for built-in values).
	Line int `json:"line,omitempty"`
}

// Settings lists cfg's values, one per leaf key ("cdi.spec-dirs"), sorted,
// each with its source: a key set in data (the config file cfg was read
// from; nil without one) is "file", every other "built-in".
func Settings(cfg *Config, data []byte) []Setting {
	lines := keyLines(data)
	var out []Setting
	flatten("", reflect.ValueOf(cfg).Elem(), func(key string, v any) {
		s := Setting{Key: key, Value: v, Source: "built-in"}
		if line, ok := lines[key]; ok {
			s.Source, s.Line = "file", line
		}
		out = append(out, s)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// flatten walks a config struct by its toml tags and calls leaf for every
// value that is not a struct or map (maps of structs are walked by key).
func flatten(prefix string, v reflect.Value, leaf func(string, any)) {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("toml"), ",")[0]
			if tag == "" || tag == "-" || !t.Field(i).IsExported() {
				continue
			}
			flatten(join(prefix, tag), v.Field(i), leaf)
		}
	case reflect.Map:
		if v.Type().Elem().Kind() != reflect.Struct {
			leaf(prefix, v.Interface())
			return
		}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			flatten(join(prefix, k.String()), v.MapIndex(k), leaf)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			flatten(prefix, v.Elem(), leaf)
		}
	default:
		leaf(prefix, v.Interface())
	}
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// Compiled on first use: every nvbind-runtime create and nvbind-hook
// precreate links this package, and only `config show` needs them.
var (
	tableLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$`) })
	keyLine   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\s*("[^"]*"|[A-Za-z0-9_-]+)\s*=`) })
)

// keyLines maps the dotted keys a TOML file sets to their lines. It reads
// the simple forms config.toml uses (tables and key = value lines); the
// strict decoder has already accepted the file.
func keyLines(data []byte) map[string]int {
	out := map[string]int{}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := tableLine().FindStringSubmatch(line); m != nil {
			table = strings.ReplaceAll(strings.ReplaceAll(m[1], `"`, ""), " ", "")
			continue
		}
		if m := keyLine().FindStringSubmatch(line); m != nil {
			out[join(table, strings.Trim(m[1], `"`))] = n
		}
	}
	return out
}

// Check reads a config file and returns every problem found, each naming
// the file, line and key: every unknown key, then the first type or value
// error (decoding stops there). A missing file is a problem here: the
// caller asked for that file.
func Check(path string) []error {
	data, err := readFile(path)
	if err != nil {
		return []error{fmt.Errorf("config %s: %w", path, err)}
	}
	var errs []error
	for _, u := range unknownKeys(data) {
		errs = append(errs, fmt.Errorf("config %s%w", path, u))
	}
	if err := Parse(data, Default()); err != nil && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("config %s%w", path, err))
	}
	return errs
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

// unknownKeys is every key of data the config does not know, as
// ":<line>: unknown key" errors in file order.
func unknownKeys(data []byte) []error {
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	var strict *toml.StrictMissingError
	if err := dec.Decode(Default()); !errors.As(err, &strict) {
		return nil
	}
	out := make([]error, 0, len(strict.Errors))
	for _, e := range strict.Errors {
		row, _ := e.Position()
		out = append(out, fmt.Errorf(":%d: unknown key %q", row, strings.Join(e.Key(), ".")))
	}
	return out
}
