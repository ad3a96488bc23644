package recipes

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"sort"
	"strconv"
	"text/tabwriter"
)

// Statuses of one constraint check.
const (
	StatusPassed  = "passed"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
)

// Check is the outcome of one constraint against a snapshot.
type Check struct {
	Name     string `json:"name"`
	Expected string `json:"expected"`
	Type     string `json:"type"`
	Actual   string `json:"actual,omitempty"`
	Status   string `json:"status"`
	Required bool   `json:"required,omitempty"`
	Source   string `json:"source,omitempty"`
	Message  string `json:"message,omitempty"`
}

// Report is the outcome of validating a snapshot against a recipe.
type Report struct {
	Recipe   string  `json:"recipe"`
	Snapshot string  `json:"snapshot,omitempty"`
	Passed   int     `json:"passed"`
	Failed   int     `json:"failed"`
	Skipped  int     `json:"skipped"`
	Checks   []Check `json:"checks"`
}

// OK reports whether no constraint failed.
func (r *Report) OK() bool { return r.Failed == 0 }

// Validate evaluates every constraint of the recipe against the snapshot;
// it never stops at the first failure. A missing reading is skipped, or
// failed when the constraint is required.
func Validate(r *Recipe, s *Snapshot) (*Report, error) {
	rep := &Report{Recipe: r.Name, Checks: make([]Check, 0, len(r.Constraints))}
	if src, ok := s.Metadata["source"].(string); ok {
		rep.Snapshot = src
	}
	names := make([]string, 0, len(r.Constraints))
	for n := range r.Constraints {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		c := r.Constraints[name]
		e, err := ParseExpr(c.Value, c.Type)
		if err != nil {
			return nil, fmt.Errorf("constraint %s: %w", name, err)
		}
		ch := Check{Name: name, Expected: e.String(), Type: e.Type, Required: c.Required, Source: c.Source}
		actual, ok := s.Lookup(name)
		switch {
		case !ok:
			reason := "not measured"
			if why, marked := s.Unreadable(name); marked {
				reason = "could not be read: " + why
			}
			if c.Required {
				ch.Status, ch.Message = StatusFailed, "required, "+reason
			} else {
				ch.Status, ch.Message = StatusSkipped, reason
			}
		default:
			ch.Actual = actual
			pass, err := e.Eval(actual)
			switch {
			case err != nil:
				ch.Status, ch.Message = StatusFailed, err.Error()
			case pass:
				ch.Status = StatusPassed
			default:
				ch.Status = StatusFailed
				ch.Message = fmt.Sprintf("%s is not %s", actual, e.String())
			}
		}
		switch ch.Status {
		case StatusPassed:
			rep.Passed++
		case StatusFailed:
			rep.Failed++
		default:
			rep.Skipped++
		}
		rep.Checks = append(rep.Checks, ch)
	}
	return rep, nil
}

// Report formats.
const (
	ReportTable = "table"
	ReportJSON  = "json"
	ReportJUnit = "junit"
)

// Format renders the report as a table, JSON or JUnit XML.
func (r *Report) Format(f string) ([]byte, error) {
	switch f {
	case ReportTable, "":
		return r.table(), nil
	case ReportJSON:
		b, err := json.MarshalIndent(r, "", "  ")
		return append(b, '\n'), err
	case ReportJUnit:
		return r.junit()
	}
	return nil, fmt.Errorf("unknown report format %q (want table, json or junit)", f)
}

func (r *Report) table() []byte {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCONSTRAINT\tEXPECTED\tACTUAL\tSOURCE\tNOTE")
	for _, c := range r.Checks {
		actual := c.Actual
		if actual == "" {
			actual = "-"
		}
		note := c.Message
		if c.Required && note == "" {
			note = "required"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Status, c.Name, c.Expected, actual, c.Source, note)
	}
	tw.Flush()
	fmt.Fprintf(&b, "recipe %s: %d passed, %d failed, %d skipped\n", r.Recipe, r.Passed, r.Failed, r.Skipped)
	return b.Bytes()
}

type junitSuites struct {
	XMLName xml.Name   `xml:"testsuites"`
	Suites  []junitRun `xml:"testsuite"`
}

type junitRun struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func (r *Report) junit() ([]byte, error) {
	run := junitRun{
		Name: "nvbind recipe validate " + r.Recipe, Tests: len(r.Checks),
		Failures: r.Failed, Skipped: r.Skipped,
	}
	for _, c := range r.Checks {
		tc := junitCase{
			Name: c.Name, Classname: "recipe." + r.Recipe,
			SystemOut: "expected " + c.Expected + ", actual " + strconv.Quote(c.Actual) + ", source " + c.Source,
		}
		switch c.Status {
		case StatusFailed:
			tc.Failure = &junitMessage{Message: c.Message, Text: c.Message}
		case StatusSkipped:
			tc.Skipped = &junitMessage{Message: c.Message}
		}
		run.Cases = append(run.Cases, tc)
	}
	b, err := xml.MarshalIndent(junitSuites{Suites: []junitRun{run}}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(append([]byte(xml.Header), b...), '\n'), nil
}
