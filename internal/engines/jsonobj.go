package engines

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// jsonObject is a JSON object that keeps its keys in the order of the file,
// so rewriting daemon.json moves nothing the user wrote.
type jsonObject struct {
	keys []string
	vals map[string]json.RawMessage
}

func parseJSONObject(data []byte) (*jsonObject, error) {
	o := &jsonObject{vals: map[string]json.RawMessage{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return o, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return nil, jsonError(data, dec, err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(data, dec, err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonError(data, dec, err)
		}
		if _, dup := o.vals[key]; dup {
			return nil, jsonError(data, dec, fmt.Errorf("key %q appears twice", key))
		}
		o.keys = append(o.keys, key)
		o.vals[key] = raw
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, jsonError(data, dec, err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, jsonError(data, dec, errors.New("data after the closing brace"))
	}
	return o, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, found %v", string(want), tok)
	}
	return nil
}

// jsonError names the line where decoding stopped.
func jsonError(data []byte, dec *json.Decoder, err error) error {
	off := int(dec.InputOffset())
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = int(se.Offset)
	}
	off = min(off, len(data))
	return fmt.Errorf("line %d: %w", bytes.Count(data[:off], []byte("\n"))+1, err)
}

func (o *jsonObject) has(key string) bool {
	_, ok := o.vals[key]
	return ok
}

// get decodes the value of key into v; false when absent or of another type.
func (o *jsonObject) get(key string, v any) bool {
	raw, ok := o.vals[key]
	return ok && json.Unmarshal(raw, v) == nil
}

func (o *jsonObject) object(key string) (*jsonObject, error) {
	raw, ok := o.vals[key]
	if !ok {
		return &jsonObject{vals: map[string]json.RawMessage{}}, nil
	}
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		return nil, fmt.Errorf("%q is not an object", key)
	}
	return parseJSONObject(raw)
}

func (o *jsonObject) set(key string, v any) error {
	var raw []byte
	var err error
	if sub, ok := v.(*jsonObject); ok {
		raw, err = sub.marshal()
	} else {
		raw, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	if !o.has(key) {
		o.keys = append(o.keys, key)
	}
	o.vals[key] = raw
	return nil
}

func (o *jsonObject) remove(key string) {
	if !o.has(key) {
		return
	}
	delete(o.vals, key)
	o.keys = slices.DeleteFunc(o.keys, func(k string) bool { return k == key })
}

func (o *jsonObject) marshal() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(o.vals[k])
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// format writes the object indented, the way docker's docs show daemon.json.
func (o *jsonObject) format() ([]byte, error) {
	raw, err := o.marshal()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "    "); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}
