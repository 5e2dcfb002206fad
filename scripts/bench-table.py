#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""bench-table.py LOG: the table of one bench VM's log (scripts/bench.sh).

Each row: the median over the rounds of C, Rust and the limit (ns per
operation), Rust / C and Rust / limit, and the spread of the Rust rounds
(max / min). A row without a limit shows "-" there.
"""
import re
import statistics
import sys

data = {}
order = []
cur = None
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"@@ bench impl=(\w+) round=(\d+)", line)
    if m:
        cur = m.group(1)
        continue
    if "@@ bench-end" in line:
        cur = None
        continue
    m = re.search(r"bench (\S+) ns_per_op=(\d+)", line)
    if m and cur:
        name = m.group(1)
        if name not in data:
            order.append(name)
        data.setdefault(name, {}).setdefault(cur, []).append(int(m.group(2)))


def med(v):
    return statistics.median(v) if v else None


def num(v):
    return "-" if v is None else "%.0f" % v


def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else "%.2f" % (a / b)


print("| row | C ns | Rust ns | limit ns | Rust/C | Rust/limit | C/limit | rounds | Rust spread |")
print("|---|---|---|---|---|---|---|---|---|")
for name in order:
    d = data[name]
    c, r, lim = med(d.get("c", [])), med(d.get("rust", [])), med(d.get("limit", []))
    rr = d.get("rust", [])
    spread = "%.3f" % (max(rr) / min(rr)) if rr and min(rr) else "-"
    print("| %s | %s | %s | %s | %s | %s | %s | %d/%d | %s |" % (
        name, num(c), num(r), num(lim), ratio(r, c), ratio(r, lim), ratio(c, lim),
        len(d.get("c", [])), len(rr), spread))
