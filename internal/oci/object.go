package oci

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/nvbind/nvbind/internal/jsonwrite"
)

// object is a JSON object opened for editing: its members in the order
// read, each kept as the raw JSON it was, unless it was set anew or opened
// as an object of its own. Only validated JSON is opened.
type object struct {
	members []*member
}

type member struct {
	rawKey string       // the key as written, quotes and escapes included
	key    string       // the key decoded
	val    gjson.Result // the value as read
	raw    []byte       // the value as set, nil if it was not
	obj    *object      // the value opened as an object, if it was
}

// parseObject splits a validated JSON object into its members. Keys that
// differ only in case are refused: runc (encoding/json) matches keys
// case-insensitively and merges repeats, so such a spec could mean one
// thing to nvbind and another to runc.
func parseObject(data []byte) (*object, error) {
	return parseObjectValue(gjson.ParseBytes(data))
}

func parseObjectValue(v gjson.Result) (*object, error) {
	if !v.IsObject() {
		return nil, errors.New("not a JSON object")
	}
	o := &object{}
	var err error
	v.ForEach(func(k, val gjson.Result) bool {
		if other := o.find(k.Str); other != nil {
			err = fmt.Errorf("key %q given twice (as %q)", k.Str, other.key)
			return false
		}
		o.members = append(o.members, &member{rawKey: k.Raw, key: k.Str, val: val})
		return true
	})
	return o, err
}

// find returns the member whose key equals key ignoring case, as
// encoding/json matches struct fields; nil if none.
func (o *object) find(key string) *member {
	if o == nil {
		return nil
	}
	for _, m := range o.members {
		if m.key == key {
			return m
		}
	}
	for _, m := range o.members {
		if strings.EqualFold(m.key, key) {
			return m
		}
	}
	return nil
}

// child opens member key as an object. open is false when the member is
// absent or null.
func (o *object) child(key string) (c *object, open bool, err error) {
	m := o.find(key)
	if m == nil {
		return nil, false, nil
	}
	if m.obj != nil {
		return m.obj, true, nil
	}
	if m.val.Type == gjson.Null && m.raw == nil {
		return nil, false, nil
	}
	if m.obj, err = parseObjectValue(m.val); err != nil {
		return nil, false, fmt.Errorf("%s: %w", key, err)
	}
	return m.obj, true, nil
}

// descend returns the object at path, nil if one on the way is not open.
func (o *object) descend(path []string) *object {
	for _, key := range path {
		m := o.find(key)
		if m == nil || m.obj == nil {
			return nil
		}
		o = m.obj
	}
	return o
}

// create returns the object at path, adding empty objects (or replacing
// nulls) on the way.
func (o *object) create(path []string) *object {
	for _, key := range path {
		m := o.find(key)
		if m == nil {
			m = o.set(key, nil)
		}
		if m.obj == nil {
			m.obj = &object{}
		}
		o = m.obj
	}
	return o
}

// set gives member key the value raw, adding the member if it is absent.
func (o *object) set(key string, raw []byte) *member {
	m := o.find(key)
	if m == nil {
		m = &member{rawKey: string(jsonwrite.AppendString(nil, key)), key: key}
		o.members = append(o.members, m)
	}
	m.raw, m.obj = raw, nil
	return m
}

// marshal appends the object's JSON to buf.
func (o *object) marshal(buf []byte) []byte {
	buf = append(buf, '{')
	for i, m := range o.members {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, m.rawKey...)
		buf = append(buf, ':')
		switch {
		case m.obj != nil:
			buf = m.obj.marshal(buf)
		case m.raw != nil:
			buf = append(buf, m.raw...)
		default:
			buf = append(buf, m.val.Raw...)
		}
	}
	return append(buf, '}')
}
