#!/bin/sh
# fuzz.sh GO FUZZ_TIME TARGET... runs each pkg:FuzzFunc target for
# FUZZ_TIME. A run that fails only with "context deadline exceeded" and
# writes no failing input is Go's fuzz coordinator racing its own
# -fuzztime deadline (go.dev/issue/75804, fixed in Go 1.27); that target
# runs again, up to three times in all. Any other failure, and a failing
# input, fails at once.
set -u
go=$1 time=$2
shift 2
for t in "$@"; do
	pkg=${t%%:*} fn=${t##*:}
	for try in 1 2 3; do
		echo "fuzz $pkg $fn ($time)"
		out=$("$go" test -run='^$' -fuzz="^$fn\$" -fuzztime="$time" "$pkg" 2>&1)
		rc=$?
		printf '%s\n' "$out"
		[ $rc -eq 0 ] && break
		if [ $try -lt 3 ] && printf '%s' "$out" | grep -q 'context deadline exceeded' &&
			! printf '%s' "$out" | grep -q 'Failing input written'; then
			echo "fuzz $pkg $fn: Go's -fuzztime deadline race (go.dev/issue/75804), no failing input: running it again"
			continue
		fi
		exit $rc
	done
done
