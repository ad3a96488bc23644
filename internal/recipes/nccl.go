package recipes

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// NCCLResult is what the performance phase reads from nccl-tests output.
type NCCLResult struct {
	// Ranks and Nodes count the "# Rank N ... on HOST" lines and their
	// hosts.
	Ranks, Nodes int
	// MaxBytes is the largest message size measured, BusBW its
	// out-of-place bus bandwidth in GB/s.
	MaxBytes int64
	BusBW    float64
	// Wrong counts results with data errors (#wrong) and out-of-bounds
	// values.
	Wrong int64
	// Rows is the number of result rows.
	Rows int
}

// ParseNCCL reads all_reduce_perf (nccl-tests) output. Columns are found
// from the header, so both the current layout (size count type redop root
// time algbw busbw #wrong, out-of-place then in-place) and older ones
// without "root" read right. The bandwidth taken is the out-of-place busbw
// of the largest message size, not the "Avg bus bandwidth" line, which
// averages in the small, latency-bound sizes.
func ParseNCCL(data []byte) (*NCCLResult, error) {
	res := &NCCLResult{}
	hosts := map[string]bool{}
	sizeCol, busCol, wrongCol := -1, -1, -1
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			f := strings.Fields(strings.TrimPrefix(line, "#"))
			switch {
			case len(f) > 0 && f[0] == "size" && busCol < 0:
				for i, name := range f {
					switch {
					case name == "busbw" && busCol < 0:
						busCol = i
					case (name == "#wrong" || name == "error") && wrongCol < 0:
						wrongCol = i
					}
				}
				sizeCol = 0
			case len(f) >= 2 && f[0] == "Rank":
				res.Ranks++
				for i := range f {
					if f[i] == "on" && i+1 < len(f) {
						hosts[f[i+1]] = true
					}
				}
			case strings.HasPrefix(strings.Join(f, " "), "Out of bounds values :") && len(f) >= 6:
				if n, err := strconv.ParseInt(f[5], 10, 64); err == nil {
					res.Wrong += n
				}
			}
			continue
		}
		if busCol < 0 {
			continue // output before the table: warnings, NCCL INFO lines
		}
		f := strings.Fields(line)
		if len(f) <= busCol {
			continue
		}
		size, err := strconv.ParseInt(f[sizeCol], 10, 64)
		if err != nil {
			continue // NCCL INFO or WARN lines between rows
		}
		bw, err := strconv.ParseFloat(f[busCol], 64)
		if err != nil {
			return nil, fmt.Errorf("nccl-tests output: row for size %d: busbw %q is not a number", size, f[busCol])
		}
		res.Rows++
		if wrongCol >= 0 && wrongCol < len(f) {
			if n, err := strconv.ParseInt(f[wrongCol], 10, 64); err == nil {
				res.Wrong += n
			}
		}
		if size >= res.MaxBytes {
			res.MaxBytes, res.BusBW = size, bw
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("nccl-tests output: %w", err)
	}
	if busCol < 0 || res.Rows == 0 {
		return nil, fmt.Errorf("nccl-tests output: no result table (want all_reduce_perf's output, with its \"size count type ... busbw\" header)")
	}
	res.Nodes = len(hosts)
	return res, nil
}

// parseSize reads a message size as all_reduce_perf's -b/-e take it: 8,
// 512K, 1M, 16G.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("message size %q: want a number with an optional K, M or G", s)
	}
	return n * mult, nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + " GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// ValidatePerformance compares nccl-tests output with the recipe's bar.
func ValidatePerformance(r *Recipe, res *NCCLResult, source string) *Report {
	rep := &Report{Recipe: r.Name, Phase: PhasePerformance, Snapshot: source}
	p := r.Performance
	if p == nil {
		why := "the recipe sets no inter-node fabric"
		if r.Fabric != "" {
			why = fmt.Sprintf("the performance table has no bar for %s on %s", r.Criteria.Accelerator, r.Fabric)
		}
		rep.add(Check{Name: "nccl-all-reduce-bw", Expected: "-", Type: TypeNumber, Status: StatusSkipped, Message: why})
		return rep
	}
	bar := p.MinBusBandwidth * (1 - p.TolerancePercent/100)
	want, err := parseSize(p.MessageSize)
	if err != nil {
		want = 0
	}
	bw := Check{
		Name: "nccl-all-reduce-bw", Type: TypeNumber, Source: p.Basis,
		Expected: fmt.Sprintf(">= %s GB/s (%s less %s%%)", fmtFloat(bar), fmtFloat(p.MinBusBandwidth), fmtFloat(p.TolerancePercent)),
		Actual:   fmt.Sprintf("%s GB/s at %s", fmtFloat(res.BusBW), humanBytes(res.MaxBytes)),
	}
	switch {
	case res.MaxBytes < want:
		bw.Status, bw.Message = StatusFailed, fmt.Sprintf("largest message was %s, the bar is for %s: run all_reduce_perf with -e %s", humanBytes(res.MaxBytes), humanBytes(want), p.MessageSize)
		bw.Remediation = fmt.Sprintf("Run the job from nvbind recipe fabric-job (all_reduce_perf -b 8 -e %s -f 2).", p.MessageSize)
	case res.BusBW < bar:
		bw.Status, bw.Message = StatusFailed, fmt.Sprintf("out-of-place busbw %s GB/s is below %s GB/s", fmtFloat(res.BusBW), fmtFloat(bar))
		bw.Remediation = p.Remediation
	default:
		bw.Status = StatusPassed
	}
	rep.add(bw)

	nodes := Check{Name: "nccl-nodes", Type: TypeNumber, Expected: fmt.Sprintf(">= %d", p.MinNodes), Actual: strconv.Itoa(res.Nodes), Status: StatusPassed}
	if res.Nodes < p.MinNodes {
		nodes.Status = StatusFailed
		nodes.Message = fmt.Sprintf("ran on %d node(s) (%d ranks); the fabric is only crossed between nodes", res.Nodes, res.Ranks)
		nodes.Remediation = fmt.Sprintf("Run the test across at least %d GPU nodes: nvbind recipe fabric-job --recipe RECIPE --nodes %d.", p.MinNodes, p.MinNodes)
	}
	rep.add(nodes)

	wrong := Check{Name: "nccl-data-errors", Type: TypeNumber, Expected: "== 0", Actual: strconv.FormatInt(res.Wrong, 10), Status: StatusPassed}
	if res.Wrong > 0 {
		wrong.Status = StatusFailed
		wrong.Message = fmt.Sprintf("%d results with wrong data or out-of-bounds values", res.Wrong)
		wrong.Remediation = "Wrong all-reduce results point at a bad GPU, NVLink or NIC: check dmesg for Xid errors (nvidia-smi -q -d ERRORS), run dcgmi diag -r 3 on the nodes, and drain the node that reports errors."
	}
	rep.add(wrong)
	return rep
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
