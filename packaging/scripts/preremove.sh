#!/bin/sh
# nvbind pre-removal (deb prerm, rpm %preun, pacman pre_remove). On an
# upgrade it does nothing; on removal it unregisters nvbind from every
# engine it was registered with (only what `nvbind runtime configure`
# added) and removes the CDI spec nvbind generated. Never fails.

# deb: "remove" or "upgrade"/"failed-upgrade"/"deconfigure"; rpm: the
# number of versions left after the transaction (0 on removal); pacman's
# pre_remove gets the old version and is only called on removal.
case "${1:-}" in
	upgrade|failed-upgrade|deconfigure) exit 0 ;;
	[1-9]*) case "$1" in *.*) ;; *) exit 0 ;; esac ;;
esac

if [ -x /usr/bin/nvbind ]; then
	for engine in docker containerd podman crio; do
		/usr/bin/nvbind runtime unconfigure --runtime "$engine" >/dev/null 2>&1 || true
	done
	# The hook modes: nvbind's hooks.d files and --gpus link, never a file
	# of another tool's at those paths.
	/usr/bin/nvbind runtime unconfigure --runtime podman --mode hook >/dev/null 2>&1 || true
	/usr/bin/nvbind runtime unconfigure --runtime crio --mode hook >/dev/null 2>&1 || true
	/usr/bin/nvbind runtime unconfigure --runtime docker --mode gpus >/dev/null 2>&1 || true
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl disable --now nvbind-cdi-refresh.path nvbind-cdi-refresh.service >/dev/null 2>&1 || true
fi
# Generated specs: nvbind's own (they name nvbind-hook), never another
# tool's file at the same path.
for spec in /var/run/cdi/nvidia.yaml /var/run/cdi/nvidia.json /etc/cdi/nvidia.yaml /etc/cdi/nvidia.json; do
	if [ -f "$spec" ] && grep -q 'NVBIND_DRIVER_VERSION' "$spec" 2>/dev/null; then
		rm -f "$spec"
	fi
done
rm -f /var/run/nvbind/inventory.json
rmdir /var/run/nvbind 2>/dev/null || true
exit 0
