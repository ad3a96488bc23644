// Package handoff is what nvbind-runtime needs to hand a call on to the
// low-level runtime: the runtime's command line as it parses it
// (ParseArgs), which runtime (FindRuntime, and the record of the one that
// created a container), the bytes of a create's spec, and Exec.
//
// It imports no strings, path/filepath or os/exec (path, bytes and small
// helpers stand in): nvbind-runtime runs it during package init
// (cmd/nvbind-runtime/internal/passthrough), and a package that imports
// strings is initialised only after the heavy packages whose paths sort
// before it. internal/oci re-exports it.
package handoff

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"sync"
)

// Args is a parsed low-level runtime command line. The original argv is
// kept verbatim: nvbind never rewrites what it passes on.
type Args struct {
	// Argv is the command line without the program name, exactly as given.
	Argv []string
	// Verb is the subcommand ("create", "run", "state", ...); "" when none
	// (for example `--version`).
	Verb string
	// LogPath and LogFormat are runc's --log and --log-format globals.
	LogPath   string
	LogFormat string
	// Root is the --root global ("" when not given).
	Root string
	// Debug is runc's --debug global: nvbind logs at debug level too.
	Debug bool
	// Help is set when the verb was asked for its help: the runtime prints
	// it and does nothing else.
	Help bool
	// Bundle is the bundle directory of create/run/restore: --bundle/-b,
	// else the working directory. Empty for other verbs.
	Bundle string
	// Config is the spec file of create/run/restore: crun's --config, else
	// the bundle's config.json.
	Config string
	// ContainerID is the container the verb is about (create/run/restore
	// always; state, kill, delete and start when it can be told).
	ContainerID string
	// force is delete's --force (-f).
	force bool
}

// Intercepts reports whether the verb creates a container, so its spec may
// need GPU edits. restore (CRIU) starts a container from its bundle's spec
// as create does: a GPU container restored without its devices would fail
// or run without them.
func (a *Args) Intercepts() bool {
	return interceptVerbs[a.Verb] && !a.Help
}

var interceptVerbs = map[string]bool{"create": true, "run": true, "restore": true}

// MentionsIntercept reports whether argv holds a word that may be a verb
// that creates a container: a command line nvbind cannot parse is only
// passed through when it cannot be one.
func MentionsIntercept(argv []string) bool {
	return slices.ContainsFunc(argv, func(s string) bool { return interceptVerbs[s] })
}

// Flavour is the command-line dialect of the low-level runtime.
type Flavour string

const (
	// Runc is runc's dialect (urfave/cli v1 over Go's flag package); youki
	// and runsc follow it closely enough.
	Runc Flavour = "runc"
	// Crun is crun's (glibc argp, in order).
	Crun Flavour = "crun"
)

// FlavourOf tells the dialect from the runtime's file name.
func FlavourOf(runtime string) Flavour {
	if contains(path.Base(runtime), "crun") {
		return Crun
	}
	return Runc
}

// ArgError says why a command line cannot be parsed exactly. A create that
// nvbind cannot parse exactly is refused: guessing could hand the spec of
// another bundle, or none, to the runtime.
type ArgError struct {
	Flag string // the flag at fault, as written; "" when none
	Msg  string
}

func (e *ArgError) Error() string {
	if e.Flag == "" {
		return e.Msg
	}
	return fmt.Sprintf("flag %s: %s", e.Flag, e.Msg)
}

// flagKind is what a flag takes.
type flagKind uint8

const (
	boolFlag  flagKind = iota + 1
	valueFlag          // any string
	uintFlag           // runc's UintFlag: strconv.ParseUint(s, 0, 64)
)

type flagTable map[string]flagKind

func merge(tables ...flagTable) flagTable {
	out := flagTable{}
	for _, t := range tables {
		for k, v := range t {
			out[k] = v
		}
	}
	return out
}

// dialect is a runtime's flags: the global ones and each verb's.
type dialect struct {
	global flagTable
	verbs  map[string]flagTable
}

// The tables are built on first use, for the one runtime a call goes to
// (nvbind-runtime parses its argv while it initialises: see the package
// comment).

// runc 1.1-1.2 (runc --help, runc VERB --help).
var runcDialect = sync.OnceValue(func() dialect {
	runcGlobal := flagTable{
		"debug": boolFlag, "log": valueFlag, "log-format": valueFlag, "root": valueFlag,
		"criu": valueFlag, "systemd-cgroup": boolFlag, "rootless": valueFlag,
		"help": boolFlag, "h": boolFlag, "version": boolFlag, "v": boolFlag,
	}
	runcCreate := flagTable{
		"bundle": valueFlag, "b": valueFlag, "console-socket": valueFlag, "pidfd-socket": valueFlag,
		"pid-file": valueFlag, "no-pivot": boolFlag, "no-new-keyring": boolFlag,
		"preserve-fds": uintFlag, "help": boolFlag, "h": boolFlag,
	}
	runcVerbs := map[string]flagTable{
		"create": runcCreate,
		"run": merge(runcCreate, flagTable{
			"detach": boolFlag, "d": boolFlag, "keep": boolFlag, "no-subreaper": boolFlag,
		}),
		"restore": {
			"console-socket": valueFlag, "image-path": valueFlag, "work-path": valueFlag,
			"tcp-established": boolFlag, "ext-unix-sk": boolFlag, "shell-job": boolFlag,
			"file-locks": boolFlag, "manage-cgroups-mode": valueFlag, "bundle": valueFlag, "b": valueFlag,
			"detach": boolFlag, "d": boolFlag, "pid-file": valueFlag, "no-subreaper": boolFlag,
			"no-pivot": boolFlag, "empty-ns": valueFlag, "auto-dedup": boolFlag, "lazy-pages": boolFlag,
			"lsm-profile": valueFlag, "lsm-mount-context": valueFlag, "help": boolFlag, "h": boolFlag,
		},
		// Verbs whose container ID nvbind reads to find the runtime that
		// created it.
		"state":  {"help": boolFlag, "h": boolFlag},
		"start":  {"help": boolFlag, "h": boolFlag},
		"delete": {"force": boolFlag, "f": boolFlag, "help": boolFlag, "h": boolFlag},
		"kill":   {"all": boolFlag, "a": boolFlag, "help": boolFlag, "h": boolFlag},
	}
	return dialect{runcGlobal, runcVerbs}
})

// crun 1.x (src/crun.c, create.c, run.c, restore.c). argp adds --help,
// --usage and -? everywhere.
var crunDialect = sync.OnceValue(func() dialect {
	argpHelp := flagTable{"help": boolFlag, "usage": boolFlag, "?": boolFlag}
	crunGlobal := merge(argpHelp, flagTable{
		"debug": boolFlag, "cgroup-manager": valueFlag, "systemd-cgroup": boolFlag, "log": valueFlag,
		"log-format": valueFlag, "log-level": valueFlag, "root": valueFlag, "rootless": valueFlag,
		"version": boolFlag, "v": boolFlag, "V": boolFlag,
	})
	crunCreate := merge(argpHelp, flagTable{
		"bundle": valueFlag, "b": valueFlag, "config": valueFlag, "f": valueFlag,
		"console-socket": valueFlag, "preserve-fds": valueFlag, "no-pivot": boolFlag,
		"pid-file": valueFlag, "no-subreaper": boolFlag, "no-new-keyring": boolFlag,
	})
	crunVerbs := map[string]flagTable{
		"create": crunCreate,
		"run":    merge(crunCreate, flagTable{"detach": boolFlag, "d": boolFlag, "keep": boolFlag}),
		"restore": merge(argpHelp, flagTable{
			"bundle": valueFlag, "b": valueFlag, "image-path": valueFlag, "work-path": valueFlag,
			"tcp-established": boolFlag, "ext-unix-sk": boolFlag, "shell-job": boolFlag,
			"detach": boolFlag, "d": boolFlag, "pid-file": valueFlag, "console-socket": valueFlag,
			"file-locks": boolFlag, "manage-cgroups-mode": valueFlag,
		}),
		"state":  argpHelp,
		"start":  argpHelp,
		"delete": merge(argpHelp, flagTable{"force": boolFlag, "f": boolFlag, "regex": valueFlag, "r": valueFlag}),
		"kill":   merge(argpHelp, flagTable{"all": boolFlag, "a": boolFlag, "regex": valueFlag, "r": valueFlag}),
	}
	return dialect{crunGlobal, crunVerbs}
})

// setFlag is one parsed flag.
type setFlag struct {
	name, value, as string
}

// ParseArgs parses argv (without the program name) as the runtime of
// flavour fl would. cwd is the directory a create without --bundle uses.
// For create, run and restore every flag must be known and the command
// line one the runtime accepts; otherwise it returns an *ArgError naming
// what is wrong. Other verbs are parsed as far as their container ID when
// nvbind knows their flags, and left alone otherwise.
func ParseArgs(argv []string, cwd string, fl Flavour) (*Args, error) {
	return ParseArgsIn(argv, func() string { return cwd }, fl)
}

// ParseArgsIn is ParseArgs asking getwd for the working directory, only
// for a create, run or restore whose bundle or --config is relative (an
// engine passes absolute ones; this saves two stats on every call).
func ParseArgsIn(argv []string, getwd func() string, fl Flavour) (*Args, error) {
	a := &Args{Argv: argv}
	d, parse := runcDialect(), parseGoFlags
	if fl == Crun {
		d, parse = crunDialect(), parseArgp
	}
	global, verbs := d.global, d.verbs
	flags, rest, err := parse(argv, global)
	if err != nil {
		return a, err
	}
	for _, f := range flags {
		switch f.name {
		case "log":
			a.LogPath = f.value
		case "log-format":
			a.LogFormat = f.value
		case "root":
			a.Root = f.value
		case "debug":
			a.Debug = f.value == "true"
		}
	}
	if len(rest) == 0 {
		return a, nil
	}
	a.Verb = rest[0]
	table := verbs[a.Verb]
	if table == nil {
		return a, nil
	}
	args := rest[1:]
	if fl == Runc {
		args = reorderArgs(table, args)
	}
	flags, pos, err := parse(args, table)
	if err != nil {
		if !interceptVerbs[a.Verb] {
			return a, nil
		}
		return a, fmt.Errorf("%s: %w", a.Verb, err)
	}
	var bundleAs string
	for _, f := range flags {
		switch f.name {
		case "help", "h", "usage", "?":
			a.Help = a.Help || f.value == "true"
		case "bundle", "b":
			// urfave/cli refuses both forms of one flag together.
			if fl == Runc && bundleAs != "" && bundleAs != f.name {
				return a, fmt.Errorf("%s: %w", a.Verb, &ArgError{f.as, "given as both --bundle and -b"})
			}
			bundleAs, a.Bundle = f.name, f.value
		case "config", "f":
			if fl == Crun && interceptVerbs[a.Verb] {
				a.Config = f.value
			}
			if a.Verb == "delete" && f.name == "f" {
				a.force = f.value == "true"
			}
		case "force":
			a.force = a.Verb == "delete" && f.value == "true"
		}
	}
	if !interceptVerbs[a.Verb] {
		if len(pos) > 0 && !a.Help {
			a.ContainerID = pos[0]
		}
		return a, nil
	}
	if a.Help {
		return a, nil
	}
	max := 1
	if fl == Crun && a.Verb == "restore" {
		max = 2
	}
	if len(pos) == 0 || len(pos) > max {
		msg := fmt.Sprintf("%s needs exactly one container ID, got %d arguments %q", a.Verb, len(pos), pos)
		for _, p := range pos {
			if isFlag(p) {
				// The runtime stops reading flags at the ID.
				msg = fmt.Sprintf("%s: flag %s after the container ID", a.Verb, p)
				break
			}
		}
		return a, &ArgError{Msg: msg}
	}
	if pos[0] == "" {
		// runc ("container id cannot be empty") and crun refuse it.
		return a, &ArgError{Msg: a.Verb + ": empty container ID"}
	}
	a.ContainerID = pos[0]
	cwd := ""
	if a.Bundle == "" || !path.IsAbs(a.Bundle) || (a.Config != "" && a.Config != SpecFile && !path.IsAbs(a.Config)) {
		cwd = getwd()
	}
	if a.Bundle == "" {
		a.Bundle = cwd
	}
	if !path.IsAbs(a.Bundle) {
		a.Bundle = path.Join(cwd, a.Bundle)
	}
	switch {
	case a.Config == "" || a.Config == SpecFile:
		// crun reads the default name after changing into the bundle.
		a.Config = path.Join(a.Bundle, SpecFile)
	case !path.IsAbs(a.Config):
		// Any other name crun resolves before it changes directory.
		a.Config = path.Join(cwd, a.Config)
	}
	return a, nil
}

func isFlag(arg string) bool { return len(arg) > 1 && arg[0] == '-' }

// parseGoFlags parses flags as Go's flag package does (runc's parser):
// one or two dashes, `=value` or the next argument for a value flag,
// strconv.ParseBool for `=value` of a boolean, stop at the first
// non-flag or after `--`. Unknown flags are errors.
func parseGoFlags(args []string, table flagTable) ([]setFlag, []string, error) {
	var flags []setFlag
	for len(args) > 0 {
		s := args[0]
		if !isFlag(s) {
			break
		}
		dashes := 1
		if s[1] == '-' {
			dashes = 2
			if len(s) == 2 {
				args = args[1:]
				break
			}
		}
		name := s[dashes:]
		if name == "" || name[0] == '-' || name[0] == '=' {
			return nil, nil, &ArgError{s, "bad flag syntax"}
		}
		args = args[1:]
		value, inline := "", false
		if i := indexByte(name, '='); i >= 0 {
			name, value, inline = name[:i], name[i+1:], true
		}
		f, err := takeValue(table, s, name, value, inline, &args, true)
		if err != nil {
			return nil, nil, err
		}
		flags = append(flags, f)
	}
	return flags, args, nil
}

// takeValue completes flag name: its inline value, or the next argument.
func takeValue(table flagTable, as, name, value string, inline bool, args *[]string, parseBool bool) (setFlag, error) {
	switch table[name] {
	case 0:
		return setFlag{}, &ArgError{as, "not a flag nvbind-runtime knows for this runtime"}
	case boolFlag:
		if !inline {
			return setFlag{name, "true", as}, nil
		}
		if !parseBool {
			return setFlag{}, &ArgError{as, "takes no value"}
		}
		b, err := strconv.ParseBool(value)
		if err != nil {
			return setFlag{}, &ArgError{as, fmt.Sprintf("invalid boolean %q", value)}
		}
		return setFlag{name, strconv.FormatBool(b), as}, nil
	}
	if !inline {
		if len(*args) == 0 {
			return setFlag{}, &ArgError{as, "needs a value"}
		}
		value, *args = (*args)[0], (*args)[1:]
	}
	if table[name] == uintFlag {
		if _, err := strconv.ParseUint(value, 0, 64); err != nil {
			return setFlag{}, &ArgError{as, fmt.Sprintf("invalid number %q", value)}
		}
	}
	return setFlag{name, value, as}, nil
}

// reorderArgs moves a runc subcommand's flags before its other arguments,
// as urfave/cli v1 does before Go's flag package parses them: a known flag
// without `=` takes the next argument along as its possible value, even a
// boolean one, so `create --no-pivot ID --bundle B` parses --no-pivot and
// stops at ID, leaving three arguments (runc refuses that).
func reorderArgs(table flagTable, args []string) []string {
	var flags, rest []string
	mayBeValue := false
	for i, arg := range args {
		switch {
		case mayBeValue && !urfaveIsFlag(table, arg):
			mayBeValue = false
			flags = append(flags, arg)
		case arg == "--":
			rest = append(append([]string{"--"}, rest...), args[i+1:]...)
			return append(flags, rest...)
		case urfaveIsFlag(table, arg):
			flags = append(flags, arg)
			mayBeValue = indexByte(arg, '=') < 0
		default:
			rest = append(rest, arg)
		}
	}
	return append(flags, rest...)
}

// urfaveIsFlag is urfave/cli v1's argIsFlag: strip up to two dashes and
// anything from '=' on, and look the name up.
func urfaveIsFlag(table flagTable, arg string) bool {
	if arg == "-" || arg == "--" || !hasPrefix(arg, "-") {
		return false
	}
	// The dashes removed are the leading ones.
	if hasPrefix(arg, "--") {
		arg = arg[2:]
	}
	if hasPrefix(arg, "-") {
		arg = arg[1:]
	}
	if i := indexByte(arg, '='); i >= 0 {
		arg = arg[:i]
	}
	return table[arg] != 0
}

// parseArgp parses flags as glibc's argp does in order (crun's parser):
// `--long`, `--long=value` or `--long value`; short flags grouped (`-dv`)
// with a value attached (`-bDIR`) or next; stop at the first non-flag or
// after `--`. A boolean takes no value. Abbreviated long names, which getopt
// would accept, are refused: nvbind does not guess.
func parseArgp(args []string, table flagTable) ([]setFlag, []string, error) {
	var flags []setFlag
	for len(args) > 0 {
		s := args[0]
		if s == "--" {
			return flags, args[1:], nil
		}
		if !isFlag(s) {
			break
		}
		args = args[1:]
		if hasPrefix(s, "--") {
			name, value, inline := cut(s[2:], '=')
			if len(name) < 2 {
				return nil, nil, &ArgError{s, "not a flag nvbind-runtime knows for this runtime"}
			}
			f, err := takeValue(table, s, name, value, inline, &args, false)
			if err != nil {
				return nil, nil, err
			}
			flags = append(flags, f)
			continue
		}
		for j := 1; j < len(s); j++ {
			name := s[j : j+1]
			if table[name] == boolFlag {
				flags = append(flags, setFlag{name, "true", "-" + name})
				continue
			}
			rest := s[j+1:]
			f, err := takeValue(table, "-"+name, name, rest, rest != "", &args, false)
			if err != nil {
				return nil, nil, err
			}
			flags = append(flags, f)
			break
		}
	}
	return flags, args, nil
}

// Stand-ins for the strings functions this package would use (see the
// package comment).

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// cut is strings.Cut at a byte.
func cut(s string, sep byte) (before, after string, found bool) {
	if i := indexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}
