#!/usr/bin/env python3
"""tapcheck.py: the TAP 13 checker for serial logs of guest test programs.

A serial log holds firmware console output (with ANSI escapes), loader and hypervisor log
lines and the guest's TAP lines, which the guest prints at the start of a line. This module
strips escapes and CRs, takes the last TAP stream in the log (from its last plan line "1..N"),
and fails on: no plan, fewer or more results than planned, any "not ok", "Bail out!", or a
run that timed out. Results are printed prefixed with the group name.

Usage as a program: tapcheck.py GROUP SERIAL_LOG [--timed-out]; exit status 0 = pass.
tapcheck.py --lines copies standard input to standard output as clean_lines() reads it.
"""
import re
import sys

ANSI = re.compile(r'\x1b\[[0-9;=?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>c]')
PLAN = re.compile(r'^1\.\.(\d+)\s*(#.*)?$')
RESULT = re.compile(r'^(not )?ok\b\s*(\d+)?\s*(.*)$')
BAIL = re.compile(r'^Bail out!(.*)$')


# The start of a hypervisor log line (hv/log.c: "[cpuN] L: " or "[tessel] L: ").
HV_LINE = re.compile(r'\[(?:cpu\d+|tessel)\] [EWID]: ')


def unsplice(lines):
    """The hypervisor and the guest share the serial port. The hypervisor writes whole lines
    under its log lock, but it cannot see where the guest's console is, so a hypervisor line
    written while Linux is in the middle of a console line lands inside that line:
    "guest text[cpu1] W: ...\n" then the rest of the guest's line. Each such hypervisor line
    becomes a line of its own and the guest's line is joined again. A guest line that itself
    quotes "[cpuN] L: " after its start would be cut there (no guest in the tests does)."""
    out, carry = [], ''
    for line in lines:
        m = HV_LINE.search(line, 1)
        if m:                                   # a guest fragment, then a hypervisor line
            carry += line[:m.start()]
            out.append(line[m.start():])
        elif carry and HV_LINE.match(line):     # another hypervisor line inside the same split
            out.append(line)
        else:
            out.append(carry + line)
            carry = ''
    if carry:
        out.append(carry)
    return out


def clean_lines(text):
    """Serial text -> list of lines without escapes, CRs or NULs, with hypervisor lines that
    split a guest's line taken out of it (unsplice)."""
    text = ANSI.sub('', text.replace('\x00', ''))
    return unsplice([line.rstrip('\r').replace('\r', '') for line in text.split('\n')])


def read_log(path):
    with open(path, 'rb') as f:
        return f.read().decode('utf-8', 'replace')


def check(group, text, timed_out=False, out=print):
    """Returns (passed, failed) counts of TAP points; every problem counts as one failure."""
    lines = clean_lines(text)
    start = None
    for i, line in enumerate(lines):
        if PLAN.match(line.strip()):
            start = i
    passed = failed = 0
    if start is None:
        out(f'{group}: not ok - no TAP plan on the serial port')
        if timed_out:
            out(f'{group}: not ok - timed out')
        return 0, 1
    planned = int(PLAN.match(lines[start].strip()).group(1))
    seen = 0
    bailed = False
    for line in lines[start + 1:]:
        s = line.strip()
        m = RESULT.match(s)
        if m:
            seen += 1
            num = int(m.group(2)) if m.group(2) else seen
            ok = m.group(1) is None
            if num != seen:
                out(f'{group}: not ok - result numbered {num} where {seen} was expected')
                failed += 1
            out(f'{group}: {s}')
            if ok:
                passed += 1
            else:
                failed += 1
            continue
        b = BAIL.match(s)
        if b:
            out(f'{group}: {s}')
            failed += 1
            bailed = True
            break
        if s.startswith('#'):
            out(f'{group}: {s}')
    if seen < planned and not bailed:
        out(f'{group}: not ok - planned {planned} tests but only {seen} reported')
        failed += planned - seen
    elif seen > planned:
        out(f'{group}: not ok - planned {planned} tests but {seen} reported')
        failed += 1
    if timed_out:
        out(f'{group}: not ok - timed out')
        failed += 1
    return passed, failed


def main(argv):
    if argv[1:] == ['--lines']:
        sys.stdout.write('\n'.join(clean_lines(sys.stdin.buffer.read().decode('utf-8', 'replace'))))
        return 0
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    p, f = check(argv[1], read_log(argv[2]), '--timed-out' in argv[3:])
    print(f'{argv[1]}: {p} passed, {f} failed')
    return 1 if f or not p else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
