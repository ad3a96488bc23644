#!/bin/sh
# nvbind post-removal (deb postrm, rpm %postun, pacman post_remove): reload
# systemd and udev; on a Debian purge, remove the configuration as well.
# Never fails.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
if command -v udevadm >/dev/null 2>&1; then
	udevadm control --reload-rules >/dev/null 2>&1 || true
fi
if [ "${1:-}" = purge ]; then
	rm -f /etc/nvbind/config.toml /etc/nvbind/config.toml.dpkg-old /etc/nvbind/config.toml.dpkg-dist
	rmdir /etc/nvbind 2>/dev/null || true
fi
exit 0
