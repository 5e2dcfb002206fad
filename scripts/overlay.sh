#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Lays the project over the pinned kernel: the build copy ($BUILDSRC) is a
# hard-link copy of the pristine tree in which every file the project changes
# is replaced by a file of its own. A file is rewritten only when its content
# changes, so make sees new mtimes only where something really changed.
#
# What goes where:
#   kernel/patches/*.patch   applied in order to pristine copies of the files they touch
#   Kconfig, Kbuild, drivers/ -> drivers/iommu/iommufd_rs/
#   rust/                     -> rust/
#   include/                  -> include/
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ -f "$PRISTINE/.unpacked" ] || die "no pristine tree; run scripts/setup.sh"

if [ ! -f "$BUILDSRC/.linked" ]; then
	log "making the build copy (hard links to the pristine tree)"
	rm -rf "$BUILDSRC"
	cp -al "$PRISTINE" "$BUILDSRC"
	touch "$BUILDSRC/.linked"
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# 1. Patches: copy the pristine version of every touched file, apply in order.
for p in "$TOP"/kernel/patches/*.patch; do
	[ -e "$p" ] || continue
	for f in $(sed -n 's|^+++ b/||p' "$p"); do
		if [ ! -e "$stage/$f" ] && [ -e "$PRISTINE/$f" ]; then
			mkdir -p "$stage/$(dirname "$f")"
			cp "$PRISTINE/$f" "$stage/$f"
		fi
	done
	(cd "$stage" && git apply --whitespace=nowarn "$p") || die "patch does not apply: $p"
done

# 2. The project's own files.
copy_tree() {
	local src=$1 dst=$2
	[ -e "$src" ] || return 0
	(cd "$(dirname "$src")" && find "$(basename "$src")" -type f ! -name '*.o' ! -name '.*' \
		! -name '*.cmd' ! -name '*.ko' ! -name '*.mod*' ! -name 'Module.symvers' \
		! -name 'modules.order' ! -name 'README.md') |
		while read -r f; do
			mkdir -p "$stage/$dst/$(dirname "$f")"
			cp "$(dirname "$src")/$f" "$stage/$dst/$f"
		done
}
mod=drivers/iommu/iommufd_rs
mkdir -p "$stage/$mod"
cp "$TOP/Kconfig" "$TOP/Kbuild" "$stage/$mod/"
copy_tree "$TOP/drivers" "$mod"
(cd "$TOP" && for d in rust include; do [ -d "$d" ] && find "$d" -type f ! -name README.md; done) |
	while read -r f; do
		mkdir -p "$stage/$(dirname "$f")"
		cp "$TOP/$f" "$stage/$f"
	done

# 3. Sync the stage into the build copy; restore files the project no longer owns.
manifest=$BUILDSRC/.iommufd-rs-manifest
(cd "$stage" && find . -type f | sed 's|^\./||' | sort) >"$stage.list"
changed=0
while read -r f; do
	if ! cmp -s "$stage/$f" "$BUILDSRC/$f"; then
		mkdir -p "$BUILDSRC/$(dirname "$f")"
		rm -f "$BUILDSRC/$f" # never write through a hard link into the pristine tree
		cp "$stage/$f" "$BUILDSRC/$f"
		changed=$((changed + 1))
	fi
done <"$stage.list"
if [ -f "$manifest" ]; then
	comm -23 "$manifest" "$stage.list" | while read -r f; do
		rm -f "$BUILDSRC/$f"
		[ -e "$PRISTINE/$f" ] && ln "$PRISTINE/$f" "$BUILDSRC/$f"
		log "restored $f"
	done
fi
mv "$stage.list" "$manifest"
log "overlay: $(wc -l <"$manifest") files owned by the project, $changed rewritten"
