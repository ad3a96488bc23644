package recipes

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"sort"
	"strconv"
	"strings"
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
	// Remediation says how to fix a failure; set on failed checks.
	Remediation string `json:"remediation,omitempty"`
}

// Validation phases.
const (
	PhaseReadiness   = "readiness"
	PhaseDeployment  = "deployment"
	PhasePerformance = "performance"
	PhaseConformance = "conformance"
)

// Phases lists the phases in the order a cluster goes through them.
var Phases = []string{PhaseReadiness, PhaseDeployment, PhasePerformance, PhaseConformance}

// Report is the outcome of one validation phase of a recipe.
type Report struct {
	Recipe string `json:"recipe"`
	Phase  string `json:"phase"`
	// Snapshot names what was checked: a node, a cluster dump, a log, an
	// evidence directory.
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
	rep := &Report{Recipe: r.Name, Phase: PhaseReadiness, Checks: make([]Check, 0, len(r.Constraints))}
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
		if ch.Status == StatusFailed {
			ch.Remediation = c.Remediation
		}
		rep.add(ch)
	}
	return rep, nil
}

// add appends a check and counts it.
func (r *Report) add(ch Check) {
	switch ch.Status {
	case StatusPassed:
		r.Passed++
	case StatusFailed:
		r.Failed++
	default:
		r.Skipped++
	}
	r.Checks = append(r.Checks, ch)
}

// Report formats.
const (
	ReportTable = "table"
	ReportJSON  = "json"
	ReportJUnit = "junit"
	ReportCTRF  = "ctrf"
)

// ReportFormats lists the formats Format accepts.
var ReportFormats = []string{ReportTable, ReportJSON, ReportJUnit, ReportCTRF}

// Format renders the report as a table, JSON, JUnit XML or CTRF JSON.
func (r *Report) Format(f string) ([]byte, error) {
	switch f {
	case ReportTable, "":
		return r.table(), nil
	case ReportJSON:
		return indentJSON(r)
	case ReportJUnit:
		return r.junit()
	case ReportCTRF:
		return r.ctrf()
	}
	return nil, fmt.Errorf("unknown report format %q (want table, json, junit or ctrf)", f)
}

// table aligns the columns itself (text/tabwriter would break the columns
// at each remediation line) and prints the remediation under each failure.
func (r *Report) table() []byte {
	rows := [][]string{{"STATUS", "CHECK", "EXPECTED", "ACTUAL", "SOURCE", "NOTE"}}
	for _, c := range r.Checks {
		actual := c.Actual
		if actual == "" {
			actual = "-"
		}
		note := c.Message
		if c.Required && note == "" {
			note = "required"
		}
		rows = append(rows, []string{c.Status, c.Name, c.Expected, actual, c.Source, note})
	}
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], len(cell))
		}
	}
	var b bytes.Buffer
	for n, row := range rows {
		line := ""
		for i, cell := range row {
			if i < len(row)-1 {
				line += cell + strings.Repeat(" ", width[i]-len(cell)+2)
			} else {
				line += cell
			}
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
		if n > 0 && r.Checks[n-1].Remediation != "" {
			fmt.Fprintf(&b, "  fix: %s\n", r.Checks[n-1].Remediation)
		}
	}
	fmt.Fprintf(&b, "%s %s: %d passed, %d failed, %d skipped\n", r.Phase, r.Recipe, r.Passed, r.Failed, r.Skipped)
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
		Name: "nvbind recipe validate --phase " + r.Phase + " " + r.Recipe, Tests: len(r.Checks),
		Failures: r.Failed, Skipped: r.Skipped,
	}
	for _, c := range r.Checks {
		tc := junitCase{
			Name: c.Name, Classname: r.Phase + "." + r.Recipe,
			SystemOut: "expected " + c.Expected + ", actual " + strconv.Quote(c.Actual) + ", source " + c.Source,
		}
		switch c.Status {
		case StatusFailed:
			text := c.Message
			if c.Remediation != "" {
				text += "\nremediation: " + c.Remediation
			}
			tc.Failure = &junitMessage{Message: c.Message, Text: text}
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

// CTRF (Common Test Report Format, ctrf.io) documents. Times are zero: the
// checks are evaluations, not timed runs, and the bytes stay stable.
type ctrfDoc struct {
	Results ctrfResults `json:"results"`
}

type ctrfResults struct {
	Tool    ctrfTool    `json:"tool"`
	Summary ctrfSummary `json:"summary"`
	Tests   []ctrfTest  `json:"tests"`
}

type ctrfTool struct {
	Name string `json:"name"`
}

type ctrfSummary struct {
	Tests   int   `json:"tests"`
	Passed  int   `json:"passed"`
	Failed  int   `json:"failed"`
	Pending int   `json:"pending"`
	Skipped int   `json:"skipped"`
	Other   int   `json:"other"`
	Start   int64 `json:"start"`
	Stop    int64 `json:"stop"`
}

type ctrfTest struct {
	Name     string            `json:"name"`
	Status   string            `json:"status"`
	Duration int64             `json:"duration"`
	Message  string            `json:"message,omitempty"`
	Suite    string            `json:"suite"`
	Extra    map[string]string `json:"extra,omitempty"`
}

func (r *Report) ctrf() ([]byte, error) {
	doc := ctrfDoc{Results: ctrfResults{
		Tool:    ctrfTool{Name: "nvbind"},
		Summary: ctrfSummary{Tests: len(r.Checks), Passed: r.Passed, Failed: r.Failed, Skipped: r.Skipped},
		Tests:   make([]ctrfTest, 0, len(r.Checks)),
	}}
	for _, c := range r.Checks {
		extra := map[string]string{"expected": c.Expected, "recipe": r.Recipe}
		for k, v := range map[string]string{"actual": c.Actual, "source": c.Source, "remediation": c.Remediation} {
			if v != "" {
				extra[k] = v
			}
		}
		doc.Results.Tests = append(doc.Results.Tests, ctrfTest{
			Name: c.Name, Status: c.Status, Message: c.Message, Suite: r.Phase, Extra: extra,
		})
	}
	return indentJSON(doc)
}

// indentJSON encodes v indented, with ">=" and "<" left as they are.
func indentJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
