package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/nvbind/nvbind/internal/audit"
	"github.com/nvbind/nvbind/internal/config"
	"github.com/nvbind/nvbind/internal/inject"
	"github.com/nvbind/nvbind/internal/oci"
	"github.com/nvbind/nvbind/internal/policy"
	"github.com/nvbind/nvbind/internal/profiles"
	"github.com/nvbind/nvbind/internal/request"
)

func init() { addCommand(newPolicyCmd) }

func newPolicyCmd(stdout, stderr io.Writer) *cobra.Command {
	var o policyCheckOptions
	check := &cobra.Command{
		Use:   "check --bundle DIR|--config-json FILE",
		Short: "print the policy decision, the matching rule and the edits for a container, running nothing",
		Args:  noArgs(stderr),
		RunE:  func(*cobra.Command, []string) error { return code(policyCheck(o, stdout, stderr)) },
	}
	f := check.Flags()
	f.StringVar(&o.bundle, "bundle", "", "OCI bundle whose config.json to check")
	f.StringVar(&o.configJSON, "config-json", "", "config.json to check")
	f.BoolVar(&o.json, "json", false, "print JSON")
	f.IntVar(&o.callerUID, "caller-uid", -1, "uid the runtime would run as (default: this user's; rootless Podman: the user's)")
	f.IntVar(&o.callerGID, "caller-gid", -1, "gid the runtime would run as (default: this user's)")
	lint := &cobra.Command{
		Use:   "lint",
		Short: "load and compile the policy: exit 1 and say where when it is malformed",
		Args:  noArgs(stderr),
		RunE:  func(*cobra.Command, []string) error { return code(policyLint(stdout, stderr)) },
	}
	return group("policy", "check a container against the GPU policy, lint the policy", stdout, stderr, check, lint)
}

// policyCmd runs `nvbind policy args...`.
func policyCmd(args []string, stdout, stderr io.Writer) int {
	return execute(append([]string{"policy"}, args...), stdout, stderr)
}

type policyCheckOptions struct {
	bundle, configJSON   string
	json                 bool
	callerUID, callerGID int
}

// policyLint loads the config and compiles its policy: exit 1 and one
// line saying where when it is malformed.
func policyLint(stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		return failTo(stderr, 1, "policy lint: %v", err)
	}
	p, err := policy.Load(cfg)
	if err != nil {
		return failTo(stderr, 1, "policy lint: %s: %v", configName(cfg), err)
	}
	if p.Off {
		fmt.Fprintf(stdout, "ok: %s has no [policy] table: no rules, no audit\n", configName(cfg))
		return 0
	}
	fmt.Fprintf(stdout, "ok: %s: preset %s, rules %s; audit log %s\n", configName(cfg), p.Preset, strings.Join(p.Rules(), ", "), p.AuditLog)
	return 0
}

func configName(cfg *config.Config) string {
	if cfg.Path == "" {
		return "built-in defaults"
	}
	return cfg.Path
}

// checkReport is what `policy check --json` prints.
type checkReport struct {
	Decision string         `json:"decision"`
	Rule     string         `json:"rule"`
	Reason   string         `json:"reason,omitempty"`
	Notes    []string       `json:"notes,omitempty"`
	Tenant   audit.Tenant   `json:"tenant"`
	Asked    audit.Request  `json:"asked"`
	Granted  *audit.Request `json:"granted,omitempty"`
	Edits    []string       `json:"edits,omitempty"`
}

// policyCheck runs a bundle's request through the policy and the
// injection in memory: nothing is written, no cache directory made, no
// just-in-time spec generated.
func policyCheck(o policyCheckOptions, stdout, stderr io.Writer) int {
	bundle, configJSON, asJSON, callerUID, callerGID := &o.bundle, &o.configJSON, &o.json, &o.callerUID, &o.callerGID
	path := *configJSON
	if (*bundle == "") == (path == "") {
		return failTo(stderr, 2, "policy check: want one of --bundle DIR or --config-json FILE")
	}
	if *bundle != "" {
		path = filepath.Join(*bundle, oci.SpecFile)
	}
	cfg, err := config.Load()
	if err != nil {
		return failTo(stderr, 1, "policy check: %v", err)
	}
	pol, err := policy.Load(cfg)
	if err != nil {
		return failTo(stderr, 1, "policy check: %s: %v", configName(cfg), err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return failTo(stderr, 1, "policy check: %v", err)
	}
	doc, err := oci.ParseDocument(data)
	if err != nil {
		return failTo(stderr, 1, "policy check: %s: %v", path, err)
	}
	req, err := request.ParseWith(policy.RequestInput(doc.Spec), pol.RequestOptions())
	if err != nil {
		return failTo(stderr, 1, "policy check: %v", err)
	}
	if req == nil {
		fmt.Fprintln(stdout, "no GPU request: the container is passed to the runtime untouched")
		return 0
	}
	id := policy.Identify(doc.Spec, data)
	if *callerUID >= 0 {
		id.CallerUID, id.CallerGroups = uint32(*callerUID), nil
	}
	if *callerGID >= 0 {
		id.CallerGID, id.CallerGroups = uint32(*callerGID), nil
	}
	dec, err := pol.Decide(id, req, policy.CatalogFacts(func() (*profiles.Catalog, error) { return profiles.LoadCatalog(cfg) }))
	if err != nil {
		return failTo(stderr, 1, "policy check: %v", err)
	}
	rep := checkReport{Decision: string(dec.Outcome), Rule: dec.Rule, Reason: dec.Reason, Notes: dec.Notes, Tenant: id.Audit(), Asked: dec.Asked}
	if dec.Outcome != policy.Refused {
		pol.PointCaches(dec, req)
		g := dec.Granted
		rep.Granted = &g
		before := *doc.Spec
		before.Mounts = append([]rspec.Mount(nil), doc.Spec.Mounts...)
		dry := *cfg
		dry.CDI.JITSpec = "" // never write a spec from a check
		log := logrus.New()
		log.SetOutput(stderr)
		log.SetLevel(logrus.WarnLevel)
		var env []string
		if doc.Spec.Process != nil {
			env = append(env, doc.Spec.Process.Env...)
		}
		if err := inject.Apply(doc.Spec, req, &dry, log); err != nil {
			return failTo(stderr, 1, "policy check: allowed by rule %q, but the request cannot be met: %v", dec.Rule, err)
		}
		rep.Edits = edits(before.Mounts, env, doc.Spec)
	}
	if *asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			return failTo(stderr, 1, "policy check: %v", err)
		}
	} else {
		printCheck(stdout, rep)
	}
	if dec.Outcome == policy.Refused {
		return 1
	}
	return 0
}

// edits lists what injection added to the spec: device nodes, mounts, env
// and hooks.
func edits(oldMounts []rspec.Mount, oldEnv []string, s *rspec.Spec) []string {
	var out []string
	if s.Linux != nil {
		for _, d := range s.Linux.Devices {
			out = append(out, fmt.Sprintf("device %s (%s %d:%d)", d.Path, d.Type, d.Major, d.Minor))
		}
	}
	had := map[string]bool{}
	for _, m := range oldMounts {
		had[m.Destination+"\x00"+m.Source] = true
	}
	for _, m := range s.Mounts {
		if !had[m.Destination+"\x00"+m.Source] {
			out = append(out, fmt.Sprintf("mount %s -> %s (%s)", m.Source, m.Destination, strings.Join(m.Options, ",")))
		}
	}
	if s.Process != nil {
		old := map[string]bool{}
		for _, e := range oldEnv {
			old[e] = true
		}
		for _, e := range s.Process.Env {
			if !old[e] {
				out = append(out, "env "+e)
			}
		}
	}
	if s.Hooks != nil {
		for _, h := range s.Hooks.CreateContainer {
			out = append(out, "createContainer hook "+strings.Join(h.Args, " "))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.SplitN(out[i], " ", 2)[0] < strings.SplitN(out[j], " ", 2)[0] })
	return out
}

func printCheck(w io.Writer, r checkReport) {
	fmt.Fprintf(w, "decision: %s\nrule:     %s\n", r.Decision, r.Rule)
	if r.Reason != "" {
		fmt.Fprintf(w, "reason:   %s\n", r.Reason)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note:     %s\n", n)
	}
	t := r.Tenant
	priv := "unprivileged"
	if t.Privileged {
		priv = "privileged"
	}
	fmt.Fprintf(w, "tenant:   %s (namespace %q pod %q, caller %d:%d, process %d:%d, %s, engine %q)\n",
		t.Key, t.Namespace, t.Pod, t.CallerUID, t.CallerGID, t.ProcessUID, t.ProcessGID, priv, t.Engine)
	fmt.Fprintf(w, "asked:    %s\n", describe(r.Asked))
	if r.Granted != nil {
		fmt.Fprintf(w, "granted:  %s\n", describe(*r.Granted))
	}
	if len(r.Edits) > 0 {
		fmt.Fprintln(w, "edits:")
		for _, e := range r.Edits {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

func describe(r audit.Request) string {
	var parts []string
	if len(r.Devices) > 0 {
		parts = append(parts, fmt.Sprintf("devices %s (from %s)", strings.Join(r.Devices, ","), r.Source))
	}
	if len(r.Ignored) > 0 {
		parts = append(parts, "ignored "+strings.Join(r.Ignored, ","))
	}
	if len(r.Capabilities) > 0 {
		parts = append(parts, "capabilities "+strings.Join(r.Capabilities, ","))
	}
	if r.Profile != "" {
		p := "profile " + r.Profile
		keys := make([]string, 0, len(r.Params))
		for k := range r.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p += " " + k + "=" + r.Params[k]
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}
