package profiles

import (
	"regexp"
	"sync"
)

// lazyRegexp compiles pattern on first use. This package is linked into
// nvbind-runtime, whose every start (GPU or not) would otherwise pay for
// compiling patterns only profile requests need.
func lazyRegexp(pattern string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}
