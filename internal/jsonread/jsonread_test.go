package jsonread

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

type point struct {
	X     int64
	Tags  []string
	Owner *uint32
}

var pointFields = []string{"x", "tags", "owner"}

func readPoint(r *Reader, v gjson.Result) point {
	var p point
	r.Object(v, "point", pointFields, func(i int, v gjson.Result) {
		switch i {
		case 0:
			p.X = r.Int(v, "x", 64)
		case 1:
			p.Tags = r.Strings(v, "tags")
		case 2:
			p.Owner = r.Uint32Ptr(v, "owner")
		}
	})
	return p
}

func TestReader(t *testing.T) {
	seven := uint32(7)
	tests := []struct {
		name    string
		strict  bool
		in      string
		want    []point
		wantErr string
	}{
		{"plain", true, `[{"x":1,"tags":["a"],"owner":7}]`, []point{{X: 1, Tags: []string{"a"}, Owner: &seven}}, ""},
		{"null is zero, [] is empty", true, `[{"x":null,"tags":[],"owner":null}]`, []point{{Tags: []string{}}}, ""},
		{"null list", true, `null`, nil, ""},
		{"unknown field refused", true, `[{"y":1}]`, nil, `point: unknown field "y"`},
		{"unknown field ignored", false, `[{"y":1,"x":2}]`, []point{{X: 2}}, ""},
		{"case folds when lenient", false, `[{"X":3}]`, []point{{X: 3}}, ""},
		{"case exact when strict", true, `[{"X":3}]`, nil, `unknown field "X"`},
		{"field twice", false, `[{"x":1,"X":2}]`, nil, `field "x" given twice`},
		{"null element refused", true, `[null]`, nil, "points: null is not an element"},
		{"null element is zero", false, `[null]`, []point{{}}, ""},
		{"not an integer", true, `[{"x":1.5}]`, nil, "x: 1.5 is not a 64-bit integer"},
		{"out of range", true, `[{"owner":4294967296}]`, nil, "owner: 4294967296 is not a 32-bit unsigned integer"},
		{"not a string", true, `[{"tags":[1]}]`, nil, "tags: 1 is not a UTF-8 string"},
		{"not UTF-8", true, "[{\"tags\":[\"\xff\"]}]", nil, "is not a UTF-8 string"},
		{"not a list", true, `{"x":1}`, nil, "points: {\"x\":1} is not a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Reader{Strict: tt.strict}
			got := List(r, gjson.Parse(tt.in), "points", func(v gjson.Result) point { return readPoint(r, v) })
			if tt.wantErr != "" {
				if r.Err == nil || !strings.Contains(r.Err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", r.Err, tt.wantErr)
				}
				return
			}
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestStringMap(t *testing.T) {
	r := &Reader{}
	m := r.StringMap(gjson.Parse(`{"a":"1","a":"2","b":null}`), "annotations")
	if r.Err != nil || !reflect.DeepEqual(m, map[string]string{"a": "2", "b": ""}) {
		t.Errorf("%v %v", m, r.Err)
	}
	if r.StringMap(gjson.Parse(`[1]`), "annotations"); r.Err == nil {
		t.Error("a list read as a map")
	}
}
