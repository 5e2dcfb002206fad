#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarises VM logs written by scripts/vm.sh (see tools/vm/init for markers).

usage: results.py [--markdown FILE] LABEL=LOG...

Prints, per log, every suite with passed/failed/skipped per fixture and, where
a suite ran against both iommufd implementations, C and Rust side by side.
The last line is "N passed, N failed, N skipped" (then ", N known C failures"
when there are any); the exit status is 1 when anything failed, a suite did not
finish or a VM did not reach its end.

A "not ok ... # XFAIL cause" line is a known failure of the C iommufd: it is
never counted as a pass, it is listed with its cause, and only a suite of the C
implementation may have one (anywhere else it counts as a failure).
"""
import re
import sys
from collections import OrderedDict

TAP = re.compile(r'^(not )?ok (\d+) (.*?)(?:\s+#\s*(SKIP|XFAIL|TODO)\b\s*(.*))?$')
PLAN = re.compile(r'^1\.\.(\d+)$')
SUITE = re.compile(r'@@ suite (\S+) impl=(\S+)')
END = re.compile(r'^@@ end (\S+) rc=(\d+)')


def new_counts():
    return {'pass': 0, 'fail': 0, 'skip': 0, 'xfail': 0}


def parse(path):
    """Returns (suites, problems); suites: [(name, impl, {fixture: counts}, failed_names)]."""
    suites, problems = [], []
    cur = None
    done = False
    with open(path, errors='replace') as f:
        for raw in f:
            line = raw.rstrip('\r\n')
            # Firmware escape codes may precede the first marker on its line.
            m = SUITE.search(line)
            if m:
                cur = {'name': m.group(1), 'impl': m.group(2), 'fx': OrderedDict(),
                       'failed': [], 'xfailed': [], 'plan': None, 'seen': 0, 'ended': False, 'rc': None}
                suites.append(cur)
                continue
            if line.startswith('@@ done'):
                done = True
                continue
            if cur is None or cur['ended']:
                continue
            m = END.match(line)
            if m:
                cur['ended'] = True
                cur['rc'] = int(m.group(2))
                continue
            m = PLAN.match(line)
            if m:
                cur['plan'] = int(m.group(1))
                continue
            m = TAP.match(line)
            if m:
                name = m.group(3)
                # Harness names are fixture[.variant].test; free text is not.
                dotted = '.' in name and ' ' not in name
                fixture = name.split('.')[0] if dotted else cur['name']
                c = cur['fx'].setdefault(fixture, new_counts())
                cur['seen'] += 1
                if m.group(1) and m.group(4) == 'XFAIL' and cur['impl'] == 'c':
                    c['xfail'] += 1
                    cur['xfailed'].append(f'{name}: {m.group(5)}')
                elif m.group(1):
                    c['fail'] += 1
                    cur['failed'].append(name)
                elif m.group(4) == 'SKIP':
                    c['skip'] += 1
                else:
                    c['pass'] += 1
    for s in suites:
        missing = 0
        if s['plan'] is not None and s['seen'] < s['plan']:
            missing = s['plan'] - s['seen']
        if not s['ended']:
            problems.append(f"suite {s['name']} ({s['impl']}) did not finish")
            missing = max(missing, 1)
        elif s['seen'] == 0 and s['rc'] != 0:
            problems.append(f"suite {s['name']} ({s['impl']}) exited {s['rc']} without results")
            missing = max(missing, 1)
        if missing:
            s['fx'].setdefault('(not run)', new_counts())['fail'] += missing
            s['failed'].append(f'({missing} planned tests never reported)')
    if not done:
        problems.append('the VM did not reach the end of its job (hang, panic or time limit)')
    return suites, problems


def main(argv):
    md_path = None
    if len(argv) > 1 and argv[0] == '--markdown':
        md_path, argv = argv[1], argv[2:]
    total = new_counts()
    vm_failures = 0
    md = []
    for arg in argv:
        label, path = arg.split('=', 1)
        suites, problems = parse(path)
        print(f'== {label} ({path})')
        md.append(f'### {label}\n')
        # Group suites by name so implementations sit side by side.
        by_name = OrderedDict()
        for s in suites:
            by_name.setdefault(s['name'], []).append(s)
        impls = []
        for s in suites:
            if s['impl'] not in impls:
                impls.append(s['impl'])
        hdr = f"  {'suite / fixture':44}" + ''.join(f'{i:>18}' for i in impls)
        print(hdr)
        print(f"  {'':44}" + ''.join(f"{'pass/fail/skip':>18}" for _ in impls))
        md.append('| suite / fixture | ' + ' | '.join(f'{i}: pass / fail / skip' for i in impls) + ' |')
        md.append('|---|' + '---|' * len(impls))
        for name, runs in by_name.items():
            fixtures = []
            for s in runs:
                for fx in s['fx']:
                    if fx not in fixtures:
                        fixtures.append(fx)
            if len(fixtures) > 1:
                rows = [(f'{name} (total)', None)] + [(fx, fx) for fx in fixtures]
            else:
                rows = [(name, fixtures[0] if fixtures else None)]
            for title, fx in rows:
                cells = []
                for impl in impls:
                    run = next((s for s in runs if s['impl'] == impl), None)
                    if run is None:
                        cells.append('-')
                        continue
                    if fx is None:
                        c = new_counts()
                        for v in run['fx'].values():
                            for k in c:
                                c[k] += v[k]
                    else:
                        c = run['fx'].get(fx, new_counts())
                    cell = f"{c['pass']}/{c['fail']}/{c['skip']}"
                    if c['xfail']:
                        cell += f"+{c['xfail']}xf"
                    cells.append(cell)
                ind = '  ' if len(rows) > 1 and fx is not None else ''
                print(f'  {ind + title:44}' + ''.join(f'{c:>18}' for c in cells))
                md.append(f'| {ind.replace(" ", "&nbsp;") + title} | ' + ' | '.join(cells) + ' |')
            for s in runs:
                for fx in s['fx'].values():
                    for k in total:
                        total[k] += fx[k]
                for n in s['failed']:
                    print(f"    FAILED ({s['impl']}): {n}")
                for n in s['xfailed']:
                    print(f"    KNOWN C FAILURE ({s['impl']}): {n}")
        for p in problems:
            print(f'  PROBLEM: {p}')
            vm_failures += 1
        md.append('')
    if vm_failures:
        total['fail'] += vm_failures
    if md_path:
        with open(md_path, 'w') as f:
            f.write('\n'.join(md) + '\n')
    known = f", {total['xfail']} known C failures" if total['xfail'] else ''
    print(f"{total['pass']} passed, {total['fail']} failed, {total['skip']} skipped{known}")
    return 1 if total['fail'] else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
