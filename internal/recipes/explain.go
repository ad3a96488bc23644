package recipes

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Explain writes which overlay set each constraint and component value of
// the recipe, with the values it replaced. With path, only values at or
// under that dotted path are shown (components.gpu-operator.values.driver).
func (res *Resolution) Explain(w io.Writer, path string) error {
	body := map[string]any{
		"constraints": res.Recipe.Constraints,
		"components":  res.Recipe.Components,
	}
	if res.Recipe.Fabric != "" {
		body["fabric"] = res.Recipe.Fabric
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var tree map[string]any
	if err := decodeGeneric(raw, &tree); err != nil {
		return err
	}
	type line struct{ path, value, by string }
	var lines []line
	walkLeaves(tree, nil, func(p []string, v any) {
		dotted := strings.Join(p, ".")
		if path != "" && dotted != path && !strings.HasPrefix(dotted, path+".") {
			return
		}
		hist := res.Provenance[dotted]
		if len(hist) == 0 {
			return // derived, not set by an overlay (a constraint's source)
		}
		last := hist[len(hist)-1]
		by := last.Overlay
		var over []string
		for _, a := range hist[:len(hist)-1] {
			if a.Deleted {
				over = append(over, a.Overlay+": (removed)")
			} else {
				over = append(over, a.Overlay+": "+displayValue(a.Value))
			}
		}
		if len(over) > 0 {
			by += " (over " + strings.Join(over, ", ") + ")"
		}
		lines = append(lines, line{dotted, displayValue(v), by})
	})
	if path != "" && len(lines) == 0 {
		return fmt.Errorf("recipe %s has no value at %s", res.Recipe.Name, path)
	}
	if path == "" {
		fmt.Fprintf(w, "recipe %s: overlays in the order they applied\n", res.Recipe.Name)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, o := range res.Applied {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", o.Name, criteriaText(o.Criteria), o.File)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "%s = %s  <- %s\n", l.path, l.value, l.by); err != nil {
			return err
		}
	}
	return nil
}

func criteriaText(c Criteria) string {
	var parts []string
	for _, kv := range [][2]string{
		{"service", c.Service}, {"accelerator", c.Accelerator}, {"os", c.OS}, {"intent", c.Intent}, {"platform", c.Platform},
	} {
		if isSet(kv[1]) {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if isSet(c.Nodes) {
		parts = append(parts, "nodes"+strings.ReplaceAll(c.Nodes, " ", ""))
	}
	if len(parts) == 0 {
		return "(all clusters)"
	}
	return strings.Join(parts, " ")
}
