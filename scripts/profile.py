#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""profile.py SOCKET OUT: a sampling profiler of a TCG guest (development).

Connects to the QMP socket of a VM started with VM_QMP=SOCKET (scripts/vm.sh),
reads the program counter of every vCPU as fast as the monitor answers
("info registers -a") until the VM exits, and writes one line per sampled
address, "ADDR COUNT LR", to OUT (LR: arm64's link register, else 0). Under -icount the samples follow the guest's
instructions only roughly (the host's time per guest instruction varies).
Symbolise with: profile.py --report OUT SYSTEM_MAP [MODULE.ko@TEXT_ADDR ...].
"""
import bisect
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter

PC_RE = re.compile(r'\b(?:RIP|PC)=([0-9a-f]{16})')
# The link register (arm64): where a leaf function (a KASAN check, memset) returns to.
LR_RE = re.compile(r'\bX30=([0-9a-f]{16})')


def sample(path, out):
    for _ in range(600):
        if os.path.exists(path):
            break
        time.sleep(0.1)
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile('rw')
    f.readline()
    def cmd(obj):
        f.write(json.dumps(obj) + '\n')
        f.flush()
        while True:
            line = f.readline()
            if not line:
                raise EOFError
            r = json.loads(line)
            if 'return' in r or 'error' in r:
                return r
    cmd({'execute': 'qmp_capabilities'})
    counts = Counter()
    try:
        while True:
            r = cmd({'execute': 'human-monitor-command',
                     'arguments': {'command-line': 'info registers -a'}})
            for cpu in r.get('return', '').split('CPU#')[1:]:
                pc = PC_RE.search(cpu)
                if not pc:
                    continue
                lr = LR_RE.search(cpu)
                key = (int(pc.group(1), 16), int(lr.group(1), 16) if lr else 0)
                counts[key] += 1
    except (EOFError, OSError, ValueError):
        pass
    with open(out, 'w') as o:
        for (a, lr), n in counts.items():
            o.write(f'{a:x} {n} {lr:x}\n')


def report(out, sysmap, mods):
    syms = []
    for line in open(sysmap):
        a, t, name = line.split()[:3]
        if t in 'tTwW':
            syms.append((int(a, 16), name))
    for spec in mods:
        ko, base = spec.split('@')
        base = int(base, 16)
        nm = subprocess.run(['nm', '--defined-only', ko], capture_output=True, text=True).stdout
        tag = os.path.basename(ko)
        for line in nm.splitlines():
            a, t, name = line.split()[:3]
            if t in 'tT':
                syms.append((base + int(a, 16), f'[{tag}] {name}'))
    syms.sort()
    keys = [a for a, _ in syms]
    by = Counter()
    total = 0
    def sym(a):
        i = bisect.bisect_right(keys, a) - 1
        return syms[i][1] if i >= 0 else '?'
    # Samples in these leaf helpers are charged to their caller (arm64: the link register).
    leaf = re.compile(os.environ.get('LEAF', r'^(__asan_|kasan_check_range|memset|memcpy|__memcpy|__memset)'))
    callers = Counter()
    for line in open(out):
        f = line.split()
        a, n = int(f[0], 16), int(f[1])
        lr = int(f[2], 16) if len(f) > 2 else 0
        name = sym(a)
        by[name] += n
        if lr and leaf.match(name):
            callers[sym(lr)] += n
        total += n
    print(f'{total} samples')
    for name, n in by.most_common(int(os.environ.get('TOP', '60'))):
        print(f'{100.0 * n / total:6.2f}% {n:7d} {name}')
    if callers:
        print('leaf helpers (KASAN checks, memset, memcpy) by caller:')
        for name, n in callers.most_common(int(os.environ.get('TOP', '60'))):
            print(f'{100.0 * n / total:6.2f}% {n:7d} {name}')


if __name__ == '__main__':
    if sys.argv[1] == '--report':
        report(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sample(sys.argv[1], sys.argv[2])
