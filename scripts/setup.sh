#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs everything the build and the tests need, skipping what is there.
# Host packages go through the system's apt; the pinned kernel source, the Rust
# library sources and the arm64 pieces are downloaded with a private apt state
# under the cache so the machine's apt sources stay as they are.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mkdir -p "$CACHE"

# --- host packages ----------------------------------------------------------
HOST_PKGS=(make gcc flex bison bc libelf-dev libssl-dev cpio kmod xz-utils
	busybox-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross libcap-dev
	rsync python3-pip clang-19 lld-19 llvm-19 libclang1-19)
BACKPORTS_PKGS=(qemu-system-x86 qemu-system-arm)
BACKPORTS_LIST=/etc/apt/sources.list.d/iommufd-rs-bookworm-backports.list

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

missing=()
for p in "${HOST_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
qemu_ok() {
	local v
	for b in qemu-system-x86_64 qemu-system-aarch64; do
		command -v $b >/dev/null || return 1
		v=$($b --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p')
		[ "${v:-0}" -ge "$QEMU_MIN_MAJOR" ] || return 1
	done
}
if [ ${#missing[@]} -gt 0 ] || ! qemu_ok; then
	log "installing host packages: ${missing[*]} ${BACKPORTS_PKGS[*]}"
	if [ ! -f "$BACKPORTS_LIST" ]; then
		echo "deb $DEBIAN_MIRROR bookworm-backports main" | $SUDO tee "$BACKPORTS_LIST" >/dev/null
	fi
	$SUDO apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}"
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		-t bookworm-backports "${BACKPORTS_PKGS[@]}"
	qemu_ok || die "QEMU >= $QEMU_MIN_MAJOR not available from bookworm-backports"
fi

# --- private apt for trixie-backports and arm64 packages ---------------------
PAPT=$CACHE/apt
mkdir -p "$PAPT/lists/partial" "$PAPT/cache/archives/partial" "$CACHE/debs"
: >"$PAPT/status"
cat >"$PAPT/sources.list.new" <<EOF
deb [arch=amd64,arm64] $DEBIAN_MIRROR trixie-backports main
deb [arch=arm64] $DEBIAN_MIRROR bookworm main
EOF
mv "$PAPT/sources.list.new" "$PAPT/sources.list"
papt() {
	local tool=$1
	shift
	$tool -q -o Dir::Etc::sourcelist="$PAPT/sources.list" \
		-o Dir::Etc::sourceparts=/dev/null \
		-o Dir::State::Lists="$PAPT/lists" \
		-o Dir::State::status="$PAPT/status" \
		-o Dir::Cache="$PAPT/cache" \
		-o APT::Architecture=amd64 \
		-o APT::Architectures::=amd64 -o APT::Architectures::=arm64 \
		-o APT::Sandbox::User=root -o Debug::NoLocking=1 "$@"
}
papt_update() {
	# Once per run of this script ($$ is the same in command substitutions).
	[ "$(cat "$PAPT/updated-by" 2>/dev/null)" = "$$" ] && return
	log "refreshing the private apt index (trixie-backports, bookworm arm64)"
	papt apt-get update >/dev/null
	echo $$ >"$PAPT/updated-by"
}
# Download one exact package version into $CACHE/debs, print the .deb path.
fetch_deb() {
	local pkg=$1 ver=$2 hint=$3 f
	f=$(ls "$CACHE/debs/${pkg%%:*}_${ver/:/%3a}"_*.deb 2>/dev/null | head -1 || true)
	if [ -z "$f" ]; then
		papt_update
		(cd "$CACHE/debs" && papt apt-get download "$pkg=$ver" >/dev/null 2>&1) ||
			die "Debian no longer serves $pkg=$ver. $hint"
		f=$(ls "$CACHE/debs/${pkg%%:*}_${ver/:/%3a}"_*.deb | head -1)
	fi
	echo "$f"
}
# Newest version of a package in the private index, optionally matching a prefix.
deb_version() {
	papt_update
	papt apt-cache madison "$1" | awk -F' [|] ' -v p="$2" 'index($2, p) == 1 {print $2}' |
		sort -uV | tail -1
}

# --- the pinned Linux 7.3 source --------------------------------------------
if [ ! -f "$PRISTINE/.unpacked" ]; then
	deb=$(fetch_deb linux-source-7.3 "$LINUX_SOURCE_VERSION" \
		"Set LINUX_SOURCE_VERSION in scripts/lib.sh to a version that 'apt-cache madison linux-source-7.3' lists for trixie-backports.")
	log "unpacking $(basename "$deb")"
	rm -rf "$LINUX_DIR/deb" "$PRISTINE"
	mkdir -p "$LINUX_DIR"
	dpkg-deb -x "$deb" "$LINUX_DIR/deb"
	mkdir -p "$PRISTINE"
	tar -C "$PRISTINE" --strip-components=1 -xJf "$LINUX_DIR"/deb/usr/src/linux-source-7.3.tar.xz
	rm -rf "$LINUX_DIR/deb"
	touch "$PRISTINE/.unpacked"
fi

# --- Rust library sources matching rustc exactly ----------------------------
rv=$(rustc_version)
if [ ! -f "$RUST_SRC_DIR/.unpacked" ]; then
	ver=$(deb_version rust-src "$rv+dfsg")
	[ -n "$ver" ] || die "rustc is $rv but Debian trixie-backports has no rust-src $rv+dfsg*; \
the kernel needs library sources that match rustc exactly. Install a rustc whose version Debian's rust-src offers."
	deb=$(fetch_deb rust-src "$ver" "rust-src $ver vanished from the index while fetching; rerun.")
	log "unpacking $(basename "$deb")"
	rm -rf "$RUST_SRC_DIR"
	mkdir -p "$RUST_SRC_DIR"
	dpkg-deb -x "$deb" "$RUST_SRC_DIR"
	[ -d "$RUST_SRC_DIR/usr/src/rustc-$rv/library" ] || die "rust-src $ver has no library for $rv"
	touch "$RUST_SRC_DIR/.unpacked"
fi

# --- arm64 pieces: static libcap and busybox ---------------------------------
if [ ! -f "$ARM64_SYSROOT/.unpacked" ]; then
	rm -rf "$ARM64_SYSROOT"
	mkdir -p "$ARM64_SYSROOT"
	for pkg in libcap-dev busybox-static; do
		ver=$(deb_version "$pkg:arm64" "")
		[ -n "$ver" ] || die "no arm64 $pkg in bookworm"
		deb=$(fetch_deb "$pkg:arm64" "$ver" "rerun to pick the new version")
		dpkg-deb -x "$deb" "$ARM64_SYSROOT"
	done
	[ -f "$ARM64_SYSROOT/usr/lib/aarch64-linux-gnu/libcap.a" ] || die "arm64 libcap.a missing"
	touch "$ARM64_SYSROOT/.unpacked"
fi

# --- libclang from PyPI -------------------------------------------------------
if [ ! -f "$LIBCLANG_DIR/libclang.so" ]; then
	log "fetching libclang $LIBCLANG_VERSION wheel"
	w=$CACHE/tools/wheels
	mkdir -p "$w"
	python3 -m pip download -q --no-deps --only-binary=:all: \
		-d "$w" "libclang==$LIBCLANG_VERSION"
	python3 -m zipfile -e "$w"/libclang-"$LIBCLANG_VERSION"-*.whl "$CACHE/tools/libclang-$LIBCLANG_VERSION"
	[ -f "$LIBCLANG_DIR/libclang.so" ] || die "libclang wheel has no clang/native/libclang.so"
fi

# --- bindgen ------------------------------------------------------------------
if [ ! -x "$BINDGEN_DIR/bin/bindgen" ]; then
	log "building bindgen-cli $BINDGEN_VERSION (a few minutes)"
	CARGO_TARGET_DIR=$CACHE/tools/bindgen-build cargo install -q --locked \
		--root "$BINDGEN_DIR" bindgen-cli --version "=$BINDGEN_VERSION"
	rm -rf "$CACHE/tools/bindgen-build"
fi

log "set-up complete (cache: $CACHE)"
