package handoff

// Force reports whether a delete was given --force (-f): the ledger keeps
// a running container's GPUs on a delete without it, which the runtime
// refuses.
func (a *Args) Force() bool { return a.Verb == "delete" && a.force }
