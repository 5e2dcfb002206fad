#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# host-tests.sh LOG: the checks that need no VM, written as TAP between the
# same markers the VMs use, for scripts/results.py.
#  - uapi_abi: include/uapi/linux/iommufd.h has exactly the ABI of the
#    pinned kernel's header (layouts, enums, macro values; scripts/abi_check.py).
#  - kernel_patches: the format-patch series applies (git am) to the pristine tree.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
logf=$1
mkdir -p "$(dirname "$logf")"
exec >"$logf" 2>&1

echo "@@ suite uapi_abi impl=-"
n=0
for h in "$TOP"/include/uapi/linux/*.h; do
	[ -e "$h" ] || continue
	n=$((n + 1))
	ABI_CHECK_LIBCLANG_ROOT=$(dirname "$(dirname "$LIBCLANG_DIR")") \
		python3 "$TOP/scripts/abi_check.py" "$PRISTINE/include/uapi/linux/$(basename "$h")" "$h" | sed 's/^/# /'
	if [ "${PIPESTATUS[0]}" = 0 ]; then echo "ok $n uapi_abi.$(basename "$h")"; else echo "not ok $n uapi_abi.$(basename "$h")"; fi
done
echo "@@ end uapi_abi rc=0"

echo "@@ suite kernel_patches impl=-"
IOMMUFD_RS_OUT=$(mktemp -d) && trap 'rm -rf "$IOMMUFD_RS_OUT"' EXIT && export IOMMUFD_RS_OUT
if "$TOP/scripts/patches.sh" >/dev/null 2>&1; then echo "ok 1 kernel_patches.series_written"; else echo "not ok 1 kernel_patches.series_written"; fi
# "git am" in order, as a user applies the series: a scratch repository holds
# the pristine versions of the files the series touches (one "git apply" of
# all patches at once is not the same check: git 2.47 refuses the fifth edit
# of rust/bindings/bindings_helper.h in one invocation, which "git am" applies).
am_check() {
	local w=$IOMMUFD_RS_OUT/am f
	mkdir -p "$w" || return 1
	sed -n 's|^diff --git a/\([^ ]*\) b/.*|\1|p' "$IOMMUFD_RS_OUT"/patches/*.patch | sort -u |
		while read -r f; do
			[ -e "$PRISTINE/$f" ] || continue
			mkdir -p "$w/$(dirname "$f")" && cp "$PRISTINE/$f" "$w/$f" || exit 1
		done || return 1
	git -C "$w" init -q &&
		git -C "$w" add -A &&
		git -C "$w" -c user.name=t -c user.email=t@invalid commit -q --allow-empty -m pristine &&
		git -C "$w" -c user.name=t -c user.email=t@invalid am -q "$IOMMUFD_RS_OUT"/patches/*.patch
}
if am_check; then
	echo "ok 2 kernel_patches.applies_to_pristine"
else
	echo "not ok 2 kernel_patches.applies_to_pristine"
fi
echo "@@ end kernel_patches rc=0"
echo "@@ done"
