#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# bench.sh [ARCH...]: the micro-benchmarks of tools/bench/iommufd_bench.c in
# one VM per architecture (default: x86_64 and arm64), on the bench kernel
# (VARIANT=bench: SMP, the default SLUB, -O2, no debug options) under
# -icount shift=0,sleep=off, so that guest time counts guest instructions
# and the host's load does not move the numbers. In each VM, five rounds of
# the C iommufd, the Rust one and the physical limit (the limit module,
# tools/bench/limit) in turn; the table has the median of each row.
# Separate from the tests: nothing here passes or fails. BENCH_ROUNDS=N
# changes the number of rounds.
set -euo pipefail
export VARIANT=bench
. "$(dirname "$0")/lib.sh"
[ $# -gt 0 ] || set -- x86_64 arm64
OUT=${IOMMUFD_RS_OUT:-$TOP/out}/bench
mkdir -p "$OUT"
"$TOP/scripts/setup.sh"
for arch in "$@"; do
	"$TOP/scripts/build-kernel.sh" "$arch"
	"$TOP/scripts/build-tests.sh" "$arch"
	VM_TIMEOUT=${VM_TIMEOUT:-5400} "$TOP/scripts/vm.sh" "$arch" bench "$OUT/$arch.log" \
		hugepagesz=1G hugepages=1 "bench_rounds=${BENCH_ROUNDS:-5}"
done
for arch in "$@"; do
	echo "== $arch ($(date -u +%Y-%m-%d), bench kernel, -icount shift=0,sleep=off, 2 vCPUs)"
	"$TOP/scripts/bench-table.py" "$OUT/$arch.log" | tee "$OUT/$arch.txt"
done
