package engines

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// marker ends every line nvbind adds to a TOML file the user owns, so that
// `nvbind runtime unconfigure` removes exactly those lines and nothing else.
const marker = "# added by nvbind"

// tomlDoc edits a TOML file as text: it adds, changes and removes single
// lines and leaves everything else (comments, order, spacing) as the user
// wrote it. Rewriting the file through a TOML encoder would lose comments.
// Every edit re-parses the text, so positions are always current.
type tomlDoc struct {
	text  []byte
	exprs []tomlExpr
	// mark: append marker to added lines (false for drop-ins nvbind owns).
	mark bool
}

// tomlExpr is one top-level expression: a [table] header or a key = value.
type tomlExpr struct {
	header bool     // [table] or [[array]]
	array  bool     // [[array]]
	table  []string // header: its name; key/value: the enclosing table
	key    []string // key/value: the (dotted) key
	// start..end covers the whole line(s), newline included.
	start, end int
	// valStart..valEnd is the value of a key/value.
	valStart, valEnd int
	// elems are the byte ranges of the values of an array value.
	elems   [][2]int
	isArray bool
}

func parseTOMLDoc(text []byte, mark bool) (*tomlDoc, error) {
	d := &tomlDoc{mark: mark}
	if err := d.reset(text); err != nil {
		return nil, err
	}
	return d, nil
}

// reset parses text (strictly, as the engine would) and indexes it.
func (d *tomlDoc) reset(text []byte) error {
	var m map[string]any
	if err := toml.Unmarshal(text, &m); err != nil {
		return tomlError(err)
	}
	var p unstable.Parser
	p.Reset(text)
	var exprs []tomlExpr
	var table []string
	for p.NextExpression() {
		n := p.Expression()
		switch n.Kind {
		case unstable.Table, unstable.ArrayTable:
			keys, _, last := keyParts(n.Key())
			e := tomlExpr{header: true, array: n.Kind == unstable.ArrayTable, table: keys}
			e.start = lineStart(text, int(n.Child().Raw.Offset))
			e.end = lineEnd(text, last)
			exprs = append(exprs, e)
			table = keys
		case unstable.KeyValue:
			keys, _, last := keyParts(n.Key())
			e := tomlExpr{table: table, key: keys}
			e.start = lineStart(text, int(n.Raw.Offset))
			e.valEnd = int(n.Raw.Offset + n.Raw.Length)
			e.valStart = valueStart(text, last)
			e.end = lineEnd(text, e.valEnd)
			if v := n.Value(); v.Kind == unstable.Array {
				e.isArray = true
				it := v.Children()
				for it.Next() {
					c := it.Node()
					if c.Kind == unstable.String || c.Kind == unstable.Integer || c.Kind == unstable.Bool {
						e.elems = append(e.elems, [2]int{int(c.Raw.Offset), int(c.Raw.Offset + c.Raw.Length)})
					}
				}
			}
			exprs = append(exprs, e)
		}
	}
	if err := p.Error(); err != nil {
		return tomlError(err)
	}
	d.text = text
	d.exprs = exprs
	return nil
}

// tomlError gives one line: "line N: message".
func tomlError(err error) error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return fmt.Errorf("line %d column %d: %s", row, col, de.Error())
	}
	var pe *unstable.ParserError
	if errors.As(err, &pe) {
		return fmt.Errorf("TOML: %s", pe.Message)
	}
	return fmt.Errorf("TOML: %w", err)
}

// keyParts returns the parts of a dotted key and the offset just past it.
func keyParts(it unstable.Iterator) (parts []string, first, last int) {
	first = -1
	for it.Next() {
		k := it.Node()
		if first < 0 {
			first = int(k.Raw.Offset)
		}
		parts = append(parts, string(k.Data))
		last = int(k.Raw.Offset + k.Raw.Length)
	}
	return parts, first, last
}

func lineStart(text []byte, off int) int {
	return bytes.LastIndexByte(text[:off], '\n') + 1
}

func lineEnd(text []byte, off int) int {
	if i := bytes.IndexByte(text[off:], '\n'); i >= 0 {
		return off + i + 1
	}
	return len(text)
}

// valueStart finds the value after "key =".
func valueStart(text []byte, keyEnd int) int {
	i := keyEnd
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	i++ // '='
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	return i
}

// value decodes the document and returns the value at path.
func (d *tomlDoc) value(path ...string) (any, bool) {
	var m map[string]any
	if toml.Unmarshal(d.text, &m) != nil {
		return nil, false
	}
	var cur any = m
	for _, p := range path {
		t, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = t[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func (d *tomlDoc) findKey(table []string, key string) int {
	for i, e := range d.exprs {
		if !e.header && slices.Equal(e.table, table) && slices.Equal(e.key, []string{key}) {
			return i
		}
	}
	return -1
}

func (d *tomlDoc) findTable(table []string) int {
	for i, e := range d.exprs {
		if e.header && !e.array && slices.Equal(e.table, table) {
			return i
		}
	}
	return -1
}

func (d *tomlDoc) splice(start, end int, repl string) error {
	text := make([]byte, 0, len(d.text)+len(repl))
	text = append(text, d.text[:start]...)
	text = append(text, repl...)
	text = append(text, d.text[end:]...)
	return d.reset(text)
}

func (d *tomlDoc) suffix() string {
	if d.mark {
		return "  " + marker
	}
	return ""
}

// set makes table.key = literal and reports whether the text changed. want
// is the decoded form of literal, to tell whether the file already has it.
// A missing line is added at the end of its table, a missing table at the
// end of the file.
func (d *tomlDoc) set(table []string, key, literal string, want any) (bool, error) {
	path := append(slices.Clone(table), key)
	if cur, ok := d.value(path...); ok && reflect.DeepEqual(normalize(cur), normalize(want)) {
		return false, nil
	}
	if i := d.findKey(table, key); i >= 0 {
		e := d.exprs[i]
		if err := d.splice(e.valStart, e.valEnd, literal); err != nil {
			return false, err
		}
		return true, d.check(path, want)
	}
	line := formatKey(key) + " = " + literal + d.suffix() + "\n"
	if len(table) == 0 {
		// Root keys go before the first table.
		at := 0
		for _, e := range d.exprs {
			if e.header {
				break
			}
			at = e.end
		}
		if err := d.splice(at, at, terminate(d.text[:at])+line); err != nil {
			return false, err
		}
		return true, d.check(path, want)
	}
	if h := d.findTable(table); h >= 0 {
		at, indent := d.exprs[h].end, indentOf(d.text, d.exprs[h].start)
		for _, e := range d.exprs[h+1:] {
			if e.header {
				break
			}
			at, indent = e.end, indentOf(d.text, e.start)
		}
		if err := d.splice(at, at, terminate(d.text[:at])+indent+line); err != nil {
			return false, err
		}
		return true, d.check(path, want)
	}
	var b strings.Builder
	b.WriteString(terminate(d.text))
	if len(bytes.TrimSpace(d.text)) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("[" + formatPath(table) + "]" + d.suffix() + "\n")
	b.WriteString(line)
	if err := d.splice(len(d.text), len(d.text), b.String()); err != nil {
		return false, err
	}
	return true, d.check(path, want)
}

// check confirms an edit means what nvbind intended; a file that defines
// the table some other way (dotted keys, inline tables) fails here.
func (d *tomlDoc) check(path []string, want any) error {
	cur, ok := d.value(path...)
	if !ok || !reflect.DeepEqual(normalize(cur), normalize(want)) {
		return fmt.Errorf("could not set %s without rewriting the file", formatPath(path))
	}
	return nil
}

// addToArray makes sure the string array table.key holds values, inserting
// the missing ones after the last element so the user's layout stays. When
// the key is absent it is created as base + values.
func (d *tomlDoc) addToArray(table []string, key string, values, base []string) (bool, error) {
	i := d.findKey(table, key)
	if i < 0 {
		if _, ok := d.value(append(slices.Clone(table), key)...); ok {
			return false, fmt.Errorf("could not add to %s without rewriting the file", formatPath(append(table, key)))
		}
		all := append(slices.Clone(base), values...)
		return d.set(table, key, tomlStrings(all), stringsToAny(all))
	}
	cur, _ := d.value(append(slices.Clone(table), key)...)
	have, ok := anyStrings(cur)
	if !d.exprs[i].isArray || !ok {
		return false, fmt.Errorf("%s is not a list of strings", formatPath(append(table, key)))
	}
	var add []string
	for _, v := range values {
		if !slices.Contains(have, v) {
			add = append(add, v)
		}
	}
	if len(add) == 0 {
		return false, nil
	}
	e := d.exprs[i]
	var at int
	var ins string
	if n := len(e.elems); n > 0 {
		at = e.elems[n-1][1]
		ins = ", " + strings.Join(quoteAll(add), ", ")
	} else {
		at = e.valStart + 1 // just inside '['
		ins = strings.Join(quoteAll(add), ", ")
	}
	if err := d.splice(at, at, ins); err != nil {
		return false, err
	}
	return true, d.check(append(slices.Clone(table), key), stringsToAny(append(have, add...)))
}

// removeFromArray drops values from the string array table.key, with the
// separator before each, undoing addToArray byte for byte.
func (d *tomlDoc) removeFromArray(table []string, key string, values []string) (bool, error) {
	changed := false
	for {
		i := d.findKey(table, key)
		if i < 0 || !d.exprs[i].isArray {
			return changed, nil
		}
		e := d.exprs[i]
		hit := -1
		for j, r := range e.elems {
			if s := string(d.text[r[0]:r[1]]); len(s) >= 2 && slices.Contains(values, unquote(s)) {
				hit = j
				break
			}
		}
		if hit < 0 {
			return changed, nil
		}
		start, end := e.elems[hit][0], e.elems[hit][1]
		switch {
		case hit > 0:
			start = e.elems[hit-1][1]
		case len(e.elems) > 1:
			end = e.elems[1][0]
		}
		if err := d.splice(start, end, ""); err != nil {
			return changed, err
		}
		changed = true
	}
}

// removeMarked deletes the lines nvbind added: key/value lines first, then
// table headers whose tables are left without keys (a header with keys
// still under it stays, or those keys would move to another table).
func (d *tomlDoc) removeMarked() (bool, error) {
	changed := false
	for pass := 0; pass < 2; pass++ {
		for {
			i := d.nextMarked(pass == 1)
			if i < 0 {
				break
			}
			e := d.exprs[i]
			start, end := e.start, e.end
			if e.header && start > 0 && isBlankLineBefore(d.text, start) && (end == len(d.text) || isBlankLineAt(d.text, end)) {
				start = lineStart(d.text, start-1)
			}
			if err := d.splice(start, end, ""); err != nil {
				return changed, err
			}
			changed = true
		}
	}
	return changed, nil
}

func (d *tomlDoc) nextMarked(headers bool) int {
	for i, e := range d.exprs {
		if e.header != headers || !bytes.HasSuffix(bytes.TrimRight(d.text[e.start:e.end], " \t\r\n"), []byte(marker)) {
			continue
		}
		if headers && i+1 < len(d.exprs) && !d.exprs[i+1].header {
			continue
		}
		return i
	}
	return -1
}

func isBlankLineBefore(text []byte, start int) bool {
	prev := lineStart(text, start-1)
	return len(bytes.TrimSpace(text[prev:start])) == 0
}

func isBlankLineAt(text []byte, off int) bool {
	return len(bytes.TrimSpace(text[off:lineEnd(text, off)])) == 0
}

// terminate returns "\n" when text does not end a line.
func terminate(text []byte) string {
	if len(text) > 0 && text[len(text)-1] != '\n' {
		return "\n"
	}
	return ""
}

func indentOf(text []byte, start int) string {
	i := start
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	return string(text[start:i])
}

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func formatKey(k string) string {
	if bareKey.MatchString(k) {
		return k
	}
	return tomlString(k)
}

func formatPath(path []string) string {
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = formatKey(p)
	}
	return strings.Join(parts, ".")
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = tomlString(s)
	}
	return out
}

func tomlStrings(ss []string) string {
	return "[" + strings.Join(quoteAll(ss), ", ") + "]"
}

// unquote decodes one TOML string literal; "" when it is not a string.
func unquote(lit string) string {
	var m struct{ V string }
	if toml.Unmarshal([]byte("V = "+lit), &m) != nil {
		return ""
	}
	return m.V
}

func stringsToAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func anyStrings(v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// normalize makes decoded TOML comparable with the values nvbind builds.
func normalize(v any) any {
	if ss, ok := v.([]string); ok {
		return stringsToAny(ss)
	}
	return v
}
