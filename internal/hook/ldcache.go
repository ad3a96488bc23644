package hook

import (
	"strings"

	"github.com/nvbind/nvbind/internal/ldcache"
)

// cacheGenerator names the hook as the writer of the caches it makes.
const cacheGenerator = "nvbind-hook"

// validSONAME reports whether name can be a file name in a library folder:
// one path component of printable ASCII that the cache can sort.
func validSONAME(name string) bool {
	return len(name) <= maxSONAME && name != "." && name != ".." &&
		!strings.Contains(name, "/") && ldcache.SortableKey(name)
}
