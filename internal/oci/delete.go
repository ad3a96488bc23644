package oci

// deleteTarget is the container id of `delete [--force|-f] <id>`: the
// first argument that is not a flag (delete's flags take no value). The
// ledger releases the container's GPUs on it.
func deleteTarget(rest []string) string {
	for i, arg := range rest {
		if arg == "--" {
			if i+1 < len(rest) {
				return rest[i+1]
			}
			return ""
		}
		if !isFlag(arg) {
			return arg
		}
	}
	return ""
}

// Force reports whether a delete was given --force (-f).
func (a *Args) Force() bool {
	if a.Verb != "delete" {
		return false
	}
	seen := false
	for _, arg := range a.Argv {
		if !seen {
			seen = arg == "delete"
			continue
		}
		if arg == "--" {
			break
		}
		if isFlag(arg) {
			name, value, inline := flagName(arg)
			if (name == "force" || name == "f") && (!inline || value == "true" || value == "1") {
				return true
			}
		}
	}
	return false
}
