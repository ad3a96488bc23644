#!/bin/sh
# build-image.sh BIN_DIR IMAGE: builds the nvbind image with no registry:
# the root file system from local files (build-rootfs.sh), then a FROM
# scratch build with docker when its daemon answers, else podman.
# ENGINE=docker|podman picks one; ENGINE_FLAGS go before the subcommand
# (podman --root DIR, for instance).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:?usage: build-image.sh BIN_DIR IMAGE}
image=${2:?usage: build-image.sh BIN_DIR IMAGE}
engine=${ENGINE:-}
if [ -z "$engine" ]; then
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
		engine=docker
	elif command -v podman >/dev/null 2>&1; then
		engine=podman
	else
		echo "build-image: neither a running docker nor podman found" >&2
		exit 1
	fi
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
"$here/build-rootfs.sh" "$bin" "$ctx/rootfs"
# shellcheck disable=SC2086
$engine ${ENGINE_FLAGS:-} build --pull=false -t "$image" -f "$here/Dockerfile" "$ctx/rootfs"
echo "built $image with $engine"
