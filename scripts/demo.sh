#!/usr/bin/env bash
# Runs one GPU container through nvbind-runtime on real runc and shows what
# the container sees. Uses the host's NVIDIA driver when there is one, else a
# simulated driver root (real file layout, mknod'd device nodes).
#
#   DEMO_DIR   work directory (default ./demo)
#   DEMO_GPUS  devices to ask for (NVIDIA_VISIBLE_DEVICES, default 0,2 or 0 on a real host)
#   RUNC       low-level runtime (default: runc on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
demo=${DEMO_DIR:-$repo/demo}
runc=${RUNC:-$(command -v runc || true)}
[ -x "$runc" ] || { echo "demo: runc not found (run 'make deps')" >&2; exit 1; }
[ -x bin/nvbind-runtime ] || { echo "demo: run 'make build' first" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "demo: needs root (runc, mknod)" >&2; exit 1; }

rm -rf "$demo"
mkdir -p "$demo/cdi" "$demo/runc" "$demo/bundle/rootfs"

if [ -r /proc/driver/nvidia/version ]; then
	root=/
	gpus=${DEMO_GPUS:-0}
	echo "== host NVIDIA driver: $(sed -n 's/^NVRM version: *//p' /proc/driver/nvidia/version)"
else
	root=$demo/driver
	gpus=${DEMO_GPUS:-0,2}
	echo "== no NVIDIA driver on this host: building a simulated driver root with 4 GPUs"
	go run ./test/cmd/simroot -out "$root" -gpus 4
fi

cat >"$demo/config.toml" <<TOML
[runtime]
runtimes = ["$runc"]
log-file = "$demo/nvbind.log"
state-dir = "$demo/state"

[cdi]
spec-dirs = ["$demo/cdi"]
jit-spec = "$demo/cdi/nvidia.yaml"

[driver]
root = "$root"

[hook]
path = "$repo/bin/nvbind-hook"

[ledger]
dir = "$demo/ledger"
TOML
export NVBIND_CONFIG=$demo/config.toml

echo "== nvbind info"
bin/nvbind info --driver-root "$root" || true
echo "== nvbind cdi generate"
bin/nvbind cdi generate --driver-root "$root" --output "$demo/cdi/nvidia.yaml"

# A busybox rootfs with the host's glibc, so that the driver's own binaries
# (nvidia-smi) run in it, and a static ldconfig to show the loader cache.
rootfs=$demo/bundle/rootfs
mkdir -p "$rootfs"/{bin,sbin,etc,proc,sys,dev,tmp,lib64,lib/x86_64-linux-gnu,usr/lib/x86_64-linux-gnu,usr/bin}
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for applet in $("$rootfs/bin/busybox" --list); do [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"; done
cp /sbin/ldconfig "$rootfs/sbin/ldconfig"
for lib in libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1; do
	[ -e "/lib/x86_64-linux-gnu/$lib" ] && cp -L "/lib/x86_64-linux-gnu/$lib" "$rootfs/lib/x86_64-linux-gnu/"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$rootfs/lib64/"
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"

# runc's own default spec, made non-interactive, asking for GPUs.
"$runc" spec --bundle "$demo/bundle"
sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"readonly": true/"readonly": false/' \
	-e 's|"TERM=xterm"|"TERM=xterm", "NVIDIA_VISIBLE_DEVICES='"$gpus"'", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"|' \
	-e 's|^\(\s*\)"sh"$|\1"sh", "-c", "echo == GPU device nodes; ls -l /dev/nvidia*; echo == loader cache; ldconfig -p \| grep -E \\"libcuda\|libnvidia-ml\\"; echo == nvidia-smi -L; nvidia-smi -L"|' \
	"$demo/bundle/config.json"

echo "== container (NVIDIA_VISIBLE_DEVICES=$gpus) through nvbind-runtime on $runc"
set +e
bin/nvbind-runtime --root "$demo/runc" run --bundle "$demo/bundle" nvbind-demo-$$
rc=$?
"$runc" --root "$demo/runc" delete --force nvbind-demo-$$ >/dev/null 2>&1
exit $rc
