#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""profile.py SOCKET OUT: a sampling profiler of a TCG guest (development).

Connects to the QMP socket of a VM started with VM_QMP=SOCKET (scripts/vm.sh),
reads the program counter of every vCPU as fast as the monitor answers
("info registers -a") until the VM exits, and writes one line per sampled
address, "ADDR COUNT LR", to OUT (LR: arm64's link register, else 0). Under -icount the samples follow the guest's
instructions only roughly (the host's time per guest instruction varies).
Symbolise with: profile.py --report OUT SYSTEM_MAP [MODULE.ko@TEXT_ADDR ...].

STACK=1 (x86_64, one vCPU): also reads the top of the stack at RSP with every
sample and keeps the first words in it that point into kernel or module text
(return addresses, mostly; no frame pointers needed). The report then charges
each sample to the innermost module function found on its stack as well
("inclusive"), which shows which of a module's calls the kernel's time is
spent under.
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
RSP_RE = re.compile(r'\bRSP=([0-9a-f]{16})')
# x86_64: kernel text and modules.
TEXT_LO = 0xffffffff81000000
TEXT_HI = 0xffffffffff000000
STACK_WORDS = 512
STACK_KEEP = 32
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
    stack = os.environ.get('STACK') == '1'
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
                rsp = RSP_RE.search(cpu)
                if stack and rsp:
                    m = cmd({'execute': 'human-monitor-command',
                             'arguments': {'command-line': f'x /{STACK_WORDS}gx 0x{rsp.group(1)}'}})
                    words = []
                    for w in re.findall(r'0x([0-9a-f]{16})', m.get('return', '')):
                        v = int(w, 16)
                        if TEXT_LO <= v < TEXT_HI:
                            words.append(v)
                            if len(words) == STACK_KEEP:
                                break
                    key = key + tuple(words)
                counts[key] += 1
                if stack:
                    break
    except (EOFError, OSError, ValueError):
        pass
    with open(out, 'w') as o:
        for (a, lr, *words), n in counts.items():
            o.write(' '.join([f'{a:x}', str(n), f'{lr:x}'] + [f'{w:x}' for w in words]) + '\n')


def report(out, sysmap, mods):
    syms = []
    # The end of each module symbol, by its start: past it is not the module's code (its data
    # lies in the same region).
    end_of = {}
    for line in open(sysmap):
        a, t, name = line.split()[:3]
        if t in 'tTwW':
            syms.append((int(a, 16), name))
    for spec in mods:
        ko, base = spec.split('@')
        base = int(base, 16)
        nm = subprocess.run(['nm', '-S', '--defined-only', ko], capture_output=True, text=True).stdout
        tag = os.path.basename(ko)
        for line in nm.splitlines():
            f = line.split()
            if len(f) == 4 and f[2] in 'tT':
                a = base + int(f[0], 16)
                syms.append((a, f'[{tag}] {f[3]}'))
                end_of[a] = a + int(f[1], 16)
    syms.sort()
    keys = [a for a, _ in syms]
    by = Counter()
    total = 0
    def sym(a):
        i = bisect.bisect_right(keys, a) - 1
        if i < 0:
            return '?'
        start, name = syms[i]
        if start in end_of and a >= end_of[start]:
            return '?'
        return name
    # Samples in these leaf helpers are charged to their caller (arm64: the link register).
    leaf = re.compile(os.environ.get('LEAF', r'^(__asan_|kasan_check_range|memset|memcpy|__memcpy|__memset)'))
    callers = Counter()
    # With STACK=1 samples: the innermost module function on the stack, and with the
    # sampled kernel function.
    incl = Counter()
    inner_only = Counter()
    pair = Counter()
    def is_mod(name):
        return name.startswith('[')
    for line in open(out):
        f = line.split()
        a, n = int(f[0], 16), int(f[1])
        lr = int(f[2], 16) if len(f) > 2 else 0
        name = sym(a)
        by[name] += n
        if lr and leaf.match(name):
            callers[sym(lr)] += n
        total += n
        frames = [s for s in (sym(int(w, 16)) for w in f[3:]) if is_mod(s)]
        if frames or is_mod(name):
            inner = name if is_mod(name) else frames[0]
            # The two innermost distinct module functions: the call and its caller.
            chain = [inner] + [s for s in frames if s != inner][:1]
            incl[' <- '.join(chain)] += n
            inner_only[inner] += n
            if not is_mod(name):
                pair[f'{inner} -> {name}'] += n
    top = int(os.environ.get('TOP', '60'))
    def table(title, counter):
        if title:
            print(title)
        for name, n in counter.most_common(top):
            print(f'{100.0 * n / total:6.2f}% {n:7d} {name}')
    print(f'{total} samples')
    table(None, by)
    if callers:
        table('leaf helpers (KASAN checks, memset, memcpy) by caller:', callers)
    if incl:
        print(f'samples with a module function on the stack: {sum(inner_only.values())}')
        table('innermost module function on the stack:', inner_only)
        table('innermost module function on the stack (and its caller):', incl)
        table('module function -> sampled kernel function:', pair)


if __name__ == '__main__':
    if sys.argv[1] == '--report':
        report(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sample(sys.argv[1], sys.argv[2])
