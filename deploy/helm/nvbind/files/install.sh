#!/bin/sh
# nvbind node installer, run by the chart on every GPU node:
#   install.sh install    (init container) binaries, CDI spec, engine handlers
#   install.sh uninstall  (preStop)        undoes exactly what install did
# The host's root is mounted at $HOST_ROOT; nvbind's own commands run
# chrooted there, so the CDI spec and the engine configs name host paths.
# Everything it changed is listed in $HOST_DIR/installed, which uninstall
# reads. Running install again changes nothing.
set -eu

HOST_ROOT=${HOST_ROOT:-/host}
SRC_DIR=${SRC_DIR:-/opt/nvbind/bin}
HOST_DIR=${HOST_DIR:-/opt/nvbind}
DRIVER_ROOT=${DRIVER_ROOT:-/}
CDI_SPEC=${CDI_SPEC:-/var/run/cdi/nvidia.yaml}
RUNTIMES=${RUNTIMES:-containerd crio}
CONTAINERD_CONFIG=${CONTAINERD_CONFIG:-}
CRIO_CONFIG=${CRIO_CONFIG:-}
RESTART_RUNTIME=${RESTART_RUNTIME:-false}
CONFIG_TOML=${CONFIG_TOML:-}
BINS="nvbind nvbind-runtime nvbind-hook"
CONFIG_MARK="# written by the nvbind Helm chart; removed on uninstall"

host=$HOST_ROOT$HOST_DIR
state=$host/installed
nvbind=$HOST_DIR/current/bin/nvbind

log() { echo "nvbind-install: $*"; }
die() { echo "nvbind-install: error: $*" >&2; exit 1; }
on_host() { chroot "$HOST_ROOT" "$@"; }

# remember records one change for uninstall, once.
remember() {
	touch "$state"
	grep -qxF "$1" "$state" || echo "$1" >>"$state"
}

# note_new records the directories above $1 (a host path) that do not
# exist yet, and $1 itself with "file", so uninstall removes what install
# made and nothing else.
note_new() {
	kind=$1 p=$2
	[ -e "$HOST_ROOT$p" ] || [ -L "$HOST_ROOT$p" ] || remember "$kind $p"
	d=${p%/*}
	while [ -n "$d" ] && [ ! -e "$HOST_ROOT$d" ]; do
		remember "dir $d"
		d=${d%/*}
	done
}

# config_flag gives the runtime's --config flag when the chart sets one.
config_flag() {
	case $1 in
	containerd) [ -z "$CONTAINERD_CONFIG" ] || echo "--config=$CONTAINERD_CONFIG" ;;
	crio) [ -z "$CRIO_CONFIG" ] || echo "--config=$CRIO_CONFIG" ;;
	esac
}

# found says whether the engine is installed on the node.
found() {
	for p in /usr/bin/$1 /usr/local/bin/$1 /bin/$1 /etc/$1; do
		[ -e "$HOST_ROOT$p" ] && return 0
	done
	return 1
}

# restart restarts the engines named, when the chart allows it.
restart() {
	for rt in "$@"; do
		if [ "$RESTART_RUNTIME" = true ]; then
			on_host systemctl restart "$rt" || die "systemctl restart $rt failed"
			log "restarted $rt"
		else
			log "$rt: restart it to load the change (the chart's install.restartRuntime is false)"
		fi
	done
}

install_binaries() {
	case $NVBIND_VERSION in '' | *[!A-Za-z0-9._+-]*) die "NVBIND_VERSION '$NVBIND_VERSION' is not a version" ;; esac
	for b in $BINS; do
		[ -f "$SRC_DIR/$b" ] || die "$SRC_DIR/$b is missing"
	done
	# One directory per version and content, so a rebuilt image never
	# overwrites binaries that running shims use.
	sum=$(cd "$SRC_DIR" && sha256sum $BINS | sha256sum | cut -c1-12)
	name=$NVBIND_VERSION-$sum
	# The state file lives in $host: note what is missing before making it.
	new_dirs=$(d=$HOST_DIR; while [ -n "$d" ] && [ ! -e "$HOST_ROOT$d" ]; do echo "$d"; d=${d%/*}; done)
	mkdir -p "$host/versions"
	for d in $new_dirs; do
		remember "dir $d"
	done
	if [ ! -d "$host/versions/$name" ]; then
		tmp=$host/versions/.tmp-$name
		rm -rf "$tmp"
		mkdir -p "$tmp/bin"
		for b in $BINS; do
			cp "$SRC_DIR/$b" "$tmp/bin/$b"
			chmod 0755 "$tmp/bin/$b"
		done
		mv "$tmp" "$host/versions/$name"
		log "installed $HOST_DIR/versions/$name"
	fi
	prev=$(readlink "$host/current" 2>/dev/null || true)
	if [ "$prev" != "versions/$name" ]; then
		# rename(2) over the old link: the switch is atomic.
		ln -sfn "versions/$name" "$host/.current.tmp"
		mv -T "$host/.current.tmp" "$host/current"
		log "$HOST_DIR/current -> versions/$name"
	fi
	# Keep the previous version for shims still running it; drop older ones.
	for d in "$host"/versions/*; do
		[ -d "$d" ] || continue
		n=versions/${d##*/}
		[ "$n" = "versions/$name" ] || [ "$n" = "$prev" ] || rm -rf "$d"
	done
}

install_config() {
	cfg=$HOST_ROOT/etc/nvbind/config.toml
	if [ -z "$CONFIG_TOML" ]; then
		return 0
	fi
	if [ -e "$cfg" ] && ! grep -qxF "$CONFIG_MARK" "$cfg"; then
		die "/etc/nvbind/config.toml exists and was not written by this chart: remove it or leave the chart's config empty"
	fi
	note_new file /etc/nvbind/config.toml
	mkdir -p "${cfg%/*}"
	printf '%s\n%s\n' "$CONFIG_MARK" "$CONFIG_TOML" >"$cfg.tmp"
	mv "$cfg.tmp" "$cfg"
	remember "config /etc/nvbind/config.toml"
	# A config nvbind cannot load would fail every GPU container.
	on_host "$nvbind" profile list >/dev/null || die "/etc/nvbind/config.toml from the chart does not load (see above)"
}

install_cdi() {
	if [ -e "$HOST_ROOT$CDI_SPEC" ] && ! grep -qxF "cdi $CDI_SPEC" "$state" 2>/dev/null; then
		mkdir -p "$host/backup"
		cp -p "$HOST_ROOT$CDI_SPEC" "$host/backup/cdi-spec"
		remember "cdi-restore $CDI_SPEC"
	fi
	remember "cdi $CDI_SPEC"
	note_new file "${CDI_SPEC%/*}/.${CDI_SPEC##*/}.lock"
	on_host "$nvbind" cdi generate --driver-root "$DRIVER_ROOT" --output "$CDI_SPEC" \
		--hook-path "$HOST_DIR/current/bin/nvbind-hook"
}

install_runtimes() {
	changed=
	for rt in $RUNTIMES; do
		case $rt in containerd | crio) ;; *) die "runtime '$rt': containerd or crio" ;; esac
		if ! found "$rt"; then
			log "$rt not found on this node: skipped"
			continue
		fi
		remember "runtime $rt"
		# The file configure writes (a drop-in may need a new directory).
		dry=$(on_host "$nvbind" runtime configure --dry-run --runtime "$rt" --path "$HOST_DIR/current/bin/nvbind-runtime" $(config_flag "$rt"))
		for f in $(echo "$dry" | sed -n 's/^would write \(.*\):$/\1/p'); do
			note_new file "$f"
		done
		out=$(on_host "$nvbind" runtime configure --runtime "$rt" --path "$HOST_DIR/current/bin/nvbind-runtime" $(config_flag "$rt"))
		echo "$out"
		case $out in *"nothing changed"*) ;; *) changed="$changed $rt" ;; esac
		# The engine's original file, kept once by configure: uninstall
		# removes the copy once the entries are gone.
		for b in $(echo "$out" | sed -n 's/^ *original kept as //p'); do
			remember "backup $b"
		done
	done
	restart $changed
}

install() {
	install_binaries
	# nvbind links the host's libc when chrooted there (it loads NVML).
	if ! out=$(on_host "$nvbind" --version 2>&1); then
		die "cannot run $nvbind on the host (it needs glibc 2.34 or newer): $out"
	fi
	install_config
	install_cdi
	install_runtimes
	log "done: RuntimeClass nvbind runs pods through $HOST_DIR/current/bin/nvbind-runtime"
}

uninstall() {
	if [ ! -e "$host" ]; then
		log "nothing installed under $HOST_DIR"
		return 0
	fi
	touch "$state"
	changed=
	for rt in $(sed -n 's/^runtime //p' "$state"); do
		out=$(on_host "$nvbind" runtime unconfigure --runtime "$rt" $(config_flag "$rt"))
		echo "$out"
		case $out in *"nothing changed"*) ;; *) changed="$changed $rt" ;; esac
	done
	restart $changed
	for f in $(sed -n 's/^backup //p' "$state"); do
		rm -f "$HOST_ROOT$f"
	done
	for f in $(sed -n 's/^cdi //p' "$state"); do
		rm -f "$HOST_ROOT$f"
	done
	for f in $(sed -n 's/^cdi-restore //p' "$state"); do
		cp -p "$host/backup/cdi-spec" "$HOST_ROOT$f"
	done
	for f in $(sed -n 's/^config //p' "$state"); do
		rm -f "$HOST_ROOT$f"
	done
	for f in $(sed -n 's/^file //p' "$state"); do
		rm -f "$HOST_ROOT$f"
	done
	dirs=$(sed -n 's/^dir //p' "$state" | awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-)
	rm -rf "$host"
	# Directories install made, deepest first, where now empty.
	for d in $dirs; do
		rmdir "$HOST_ROOT$d" 2>/dev/null || true
	done
	log "removed nvbind from the node"
}

case ${1:-} in
install) install ;;
uninstall) uninstall ;;
*) die "usage: install.sh install|uninstall" ;;
esac
