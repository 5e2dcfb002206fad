#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# dev.sh ARCH JOB [KERNEL-ARGS...]: development loop for changes to the module
# (drivers/, Kbuild) and the guest programs (tools/) of this checkout, against
# the kernel that `make kernel` (or `make check`) built in the cache.
#
# The module and the programs are built into out/dev-<arch>/, the cached
# module tree is copied there with this checkout's iommufd_rs.ko in place of
# the cached one, and the VM boots from that copy. Nothing in the cache is
# written, so several checkouts can use one cache at the same time. Changes
# to rust/, include/ or kernel/ need the kernel rebuilt: use build-kernel.sh.
#
# Example: scripts/dev.sh x86_64 upstream impls=rust targs=-f,iommufd_ioas
# The serial log is out/dev-<arch>/<job>.log; results.py prints the tables.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=$1 job=$2
shift 2
obj=$(objdir "$arch")
[ -e "$obj/modroot" ] || die "no cached kernel for $arch ($VARIANT); run make kernel first"
work=${IOMMUFD_RS_OUT:-$TOP/out}/dev-$arch-$VARIANT
mkdir -p "$work/mod"

log "building iommufd_rs.ko from $TOP"
kmake "$arch" M="$TOP" MO="$work/mod" modules >"$work/module.log" 2>&1 ||
	{ tail -40 "$work/module.log"; die "module build failed (log: $work/module.log)"; }
rm -rf "$work/modroot"
cp -a "$obj/modroot" "$work/modroot"
kver=$(ls "$work/modroot/lib/modules")
dst=$(find "$work/modroot/lib/modules/$kver" -name iommufd_rs.ko | head -1)
[ -n "$dst" ] || dst=$work/modroot/lib/modules/$kver/extra/iommufd_rs.ko
mkdir -p "$(dirname "$dst")"
"${CROSS_STRIP:-$(cross_compile "$arch")strip}" --strip-debug -o "$dst" "$work/mod/iommufd_rs.ko"

GUEST_BIN=$work/guest-bin "$TOP/scripts/build-tests.sh" "$arch"
VM_WORK=$work GUEST_BIN=$work/guest-bin MODROOT=$work/modroot \
	"$TOP/scripts/vm.sh" "$arch" "$job" "$work/$job.log" "$@" || true
"$TOP/scripts/results.py" "$arch-dev=$work/$job.log"
