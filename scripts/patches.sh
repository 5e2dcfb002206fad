#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Writes every change the project makes to the pinned kernel as a
# git format-patch series (out/patches/), applicable with "git am" on the
# pristine Linux 7.3 tree: first kernel/patches/* (edits of existing files)
# in order, then one patch adding the project's own files.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
"$TOP/scripts/setup.sh" >/dev/null
"$TOP/scripts/overlay.sh"
OUT=${IOMMUFD_RS_OUT:-$TOP/out}/patches
rm -rf "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
manifest=$BUILDSRC/.iommufd-rs-manifest

g() { git -C "$work" -c user.name="iommufd-rs" -c user.email="iommufd-rs@invalid" "$@"; }
g init -q
# Base: the pristine versions of the files the project touches.
while read -r f; do
	if [ -e "$PRISTINE/$f" ]; then
		mkdir -p "$work/$(dirname "$f")"
		cp "$PRISTINE/$f" "$work/$f"
	fi
done <"$manifest"
g add -A
g commit -q --allow-empty -m "pristine Linux $LINUX_SOURCE_VERSION (files touched by iommufd-rs)"
base=$(g rev-parse HEAD)

for p in "$TOP"/kernel/patches/*.patch; do
	[ -e "$p" ] || continue
	g apply "$p"
	g add -A
	# The patch's header (Subject: line and body up to the diff) is the message.
	sed -n -e '/^diff --git/q' -e '/^--- a\//q' -e p "$p" | sed '1s/^Subject: \(\[PATCH\] \)\{0,1\}//' | g commit -q -F -
done

while read -r f; do
	mkdir -p "$work/$(dirname "$f")"
	cp "$BUILDSRC/$f" "$work/$f"
done <"$manifest"
g add -A
g commit -q -F - <<MSG
iommu: add iommufd-rs, the Rust implementation of iommufd

Add drivers/iommu/iommufd_rs/ (the module, built when CONFIG_IOMMUFD_RUST
is set or as an external module) and the project's additions to rust/ and
include/. See Documentation/ in the iommufd-rs repository for the design.
MSG
mkdir -p "$OUT"
g format-patch -q -o "$OUT" "$base"..HEAD
log "wrote $(ls "$OUT" | wc -l) patches to $OUT"
