#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# bench.sh [ARCH]: the micro-benchmarks of tools/bench/iommufd_bench.c in one
# VM of the normal kernel, against the C iommufd and the Rust one in turn
# (two rounds each), and the ratio Rust / C of the mean time per operation.
# Separate from the tests: nothing here passes or fails.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=${1:-x86_64}
OUT=${IOMMUFD_RS_OUT:-$TOP/out}/bench
mkdir -p "$OUT"
"$TOP/scripts/setup.sh"
"$TOP/scripts/build-kernel.sh" "$arch"
"$TOP/scripts/build-tests.sh" "$arch"
"$TOP/scripts/vm.sh" "$arch" bench "$OUT/$arch.log"
python3 - "$OUT/$arch.log" <<'PY'
import re, sys
cur = None
data = {}
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"@@ bench impl=(\w+) round=(\d+)", line)
    if m:
        cur = m.group(1)
        continue
    if line.startswith("@@ bench-end"):
        cur = None
        continue
    m = re.match(r"bench (\S+) ns_per_op=(\d+)", line)
    if m and cur:
        data.setdefault(m.group(1), {}).setdefault(cur, []).append(int(m.group(2)))
print("%-22s %14s %14s %10s" % ("benchmark", "C ns/op", "Rust ns/op", "Rust/C"))
for name, d in data.items():
    c = d.get("c", [])
    r = d.get("rust", [])
    if not c or not r:
        print("%-22s %14s %14s %10s" % (name, c or "-", r or "-", "-"))
        continue
    cm, rm = sum(c) / len(c), sum(r) / len(r)
    print("%-22s %14.0f %14.0f %10.2f" % (name, cm, rm, rm / cm))
PY
