#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# fuzz.sh [ARCH] (make fuzz): the long run of tools/iommufd_fuzz.c against the
# Rust iommufd on the debug kernel (KASAN, lockdep, kmemleak): FUZZ_SEEDS
# seeds of FUZZ_COUNT calls each, single-threaded, and a 4-thread run of
# FUZZ_COUNT calls, then the module's counters, the unload and the kernel log
# (splats, kmemleak). The default is 10 seeds of 100000 calls: 1.1 million.
#
#   DEBUG=0      the normal kernel instead
#   IMPL=c|both  the C iommufd too (then the traces are compared)
#   FUZZ_SEEDS="1 2 3"  FUZZ_COUNT=N  FUZZ_TIME=SEC (per run)
#
# Ends with "N passed, N failed, N skipped"; exits non-zero on any failure.
set -euo pipefail
export DEBUG=${DEBUG:-1}
. "$(dirname "$0")/lib.sh"
arch=${1:-x86_64}
seeds=${FUZZ_SEEDS:-1 2 3 4 5 6 7 8 9 10}
count=${FUZZ_COUNT:-100000}
ftime=${FUZZ_TIME:-1800}
case ${IMPL:-rust} in
c | rust) impls=${IMPL:-rust} ;;
both) impls=c,rust ;;
*) die "IMPL must be c, rust or both" ;;
esac
OUT=${IOMMUFD_RS_OUT:-$TOP/out}/fuzz-$VARIANT
mkdir -p "$OUT"
"$TOP/scripts/setup.sh"
"$TOP/scripts/build-kernel.sh" "$arch"
"$TOP/scripts/build-tests.sh" "$arch"
log "fuzzing the $arch VM ($VARIANT kernel, against: $impls; seeds: $seeds; $count calls each)"
t0=$(date +%s)
VM_TIMEOUT=${VM_TIMEOUT:-14400} "$TOP/scripts/vm.sh" "$arch" fuzz "$OUT/$arch.log" \
	"impls=$impls" "fuzz_seeds=${seeds// /,}" "fuzz_count=$count" "fuzz_time=$ftime" || true
log "the VM ran for $(($(date +%s) - t0)) s"
"$TOP/scripts/results.py" "$arch-$VARIANT-fuzz=$OUT/$arch.log"
