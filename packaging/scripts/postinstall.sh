#!/bin/sh
# nvbind post-install (deb postinst, rpm %post, pacman post_install and
# post_upgrade). Idempotent, and never fails the transaction: a machine
# without a GPU, an engine, systemd or udev (a container, a chroot, an image
# build) installs nvbind all the same.
# It registers nvbind with no engine: that is `nvbind runtime configure`,
# the administrator's call.

# deb calls postinst with "configure" (and "abort-*" after a failed
# upgrade); only "configure" installs.
case "${1:-}" in abort-*) exit 0 ;; esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
	systemctl enable nvbind-cdi-refresh.service nvbind-cdi-refresh.path >/dev/null 2>&1 || true
	systemctl start nvbind-cdi-refresh.path >/dev/null 2>&1 || true
fi
if command -v udevadm >/dev/null 2>&1; then
	udevadm control --reload-rules >/dev/null 2>&1 || true
fi

# The spec for the driver loaded now; with none, the udev rule and the
# boot unit make it when one loads.
if [ -e /proc/driver/nvidia/version ] || [ -e /dev/dxg ]; then
	/usr/bin/nvbind cdi generate || echo "nvbind: could not generate the CDI spec now; run 'nvbind doctor'" >&2
fi
exit 0
