#!/bin/sh
# build-rootfs.sh BIN_DIR OUT_DIR: the image's root file system from local
# files only: BIN_DIR's nvbind binaries, busybox-static (the installer's
# shell and tools) and the shared libraries the nvbind CLI needs.
set -eu
bin=${1:?usage: build-rootfs.sh BIN_DIR OUT_DIR}
out=${2:?usage: build-rootfs.sh BIN_DIR OUT_DIR}
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "build-rootfs: busybox not found (apt-get install busybox-static)" >&2; exit 1; }
if ldd "$busybox" >/dev/null 2>&1; then
	echo "build-rootfs: $busybox is not static (apt-get install busybox-static)" >&2
	exit 1
fi
rm -rf "$out"
mkdir -p "$out/bin" "$out/opt/nvbind/bin" "$out/tmp" "$out/etc"
chmod 1777 "$out/tmp"
for b in nvbind nvbind-runtime nvbind-hook; do
	[ -x "$bin/$b" ] || { echo "build-rootfs: $bin/$b missing (make build)" >&2; exit 1; }
	cp "$bin/$b" "$out/opt/nvbind/bin/$b"
done
cp "$busybox" "$out/bin/busybox"
for a in $("$busybox" --list); do
	[ "$a" = busybox ] || ln -sf busybox "$out/bin/$a"
done
# The CLI's shared libraries, at the paths its loader looks for them.
for lib in $(ldd "$bin/nvbind" | grep -o '/[^ ]*'); do
	mkdir -p "$out$(dirname "$lib")"
	cp -L "$lib" "$out$lib"
done
echo "root:x:0:0:root:/:/bin/sh" >"$out/etc/passwd"
echo "root:x:0:" >"$out/etc/group"
