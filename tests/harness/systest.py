#!/usr/bin/env python3
"""systest.py: runs the system-test groups of groups.py, JOBS emulators at a time (default:
one per host CPU; JOBS=1 runs them one after the other, reports streaming).

For each selected group it writes the group's tessel.cfg / startup.nsh, boots a fresh ESP
with bochs.sh or qemu.sh (which own the run directory build/run/<name>/, the timeout and the
early end on a pattern), then checks the serial log: the TAP stream (tapcheck.py) and the
group's expected / rejected patterns, each pattern one test point. Prints every result
prefixed with the group name, a per-group summary, and last "system: N passed, N failed".

Usage: systest.py [GROUP...]   (default: all groups; TESTS=a,b in the environment also
selects; unknown names are an error). Exit status 1 if anything failed.
"""
import concurrent.futures
import os
import re
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, HERE)
import groups as G  # noqa: E402
import tapcheck  # noqa: E402


def selected(argv):
    names = list(argv)
    if not names and os.environ.get('TESTS'):
        names = [n.strip() for n in os.environ['TESTS'].split(',') if n.strip()]
    known = {g['name'] for g in G.GROUPS}
    names = [n for n in names if n != 'unit']
    bad = [n for n in names if n not in known]
    if bad:
        print(f'systest: unknown group(s) {", ".join(bad)}; known: {", ".join(sorted(known))}')
        sys.exit(2)
    if not names:
        return G.GROUPS if not os.environ.get('TESTS') else []
    return [g for g in G.GROUPS if g['name'] in names]


def run_check(g, done):
    """A group with emu 'check' boots nothing: its `check` function compares the logs of the
    groups in `needs`, which must have run earlier in this same invocation."""
    name = g['name']
    print(f'=== {name} (compares {", ".join(g["needs"])})', flush=True)
    absent = [n for n in g['needs'] if n not in done]
    if absent:
        print(f'{name}: not ok - needs group(s) {", ".join(absent)} in the same run '
              f'(e.g. TESTS={",".join(g["needs"] + [name])})')
        return 0, 1, 'inputs missing'
    logs = {n: tapcheck.clean_lines(tapcheck.read_log(os.path.join(ROOT, 'build', 'run', n, 'serial.log')))
            for n in g['needs']}
    passed = failed = 0
    for label, ok, detail in g['check'](logs):
        print(f'{name}: {"ok" if ok else "not ok"} - {label}' + ('' if ok or not detail else f' ({detail})'))
        if detail and ok:
            for d in detail.split('\n'):
                print(f'{name}: # {d}')
        passed, failed = passed + bool(ok), failed + (not ok)
    return passed, failed, 'compared'


def run_group(g, out=print):
    """Boots and checks one group; every line it reports goes through out (print, or a buffer
    when groups run side by side)."""
    name = g['name']
    inputs = os.path.join(ROOT, 'build', 'run', '.inputs', name)
    os.makedirs(inputs, exist_ok=True)
    cmd = [os.path.join(HERE, 'bochs.sh' if g['emu'] == 'bochs' else 'qemu.sh'), name]
    boot = g.get('boot', 'build/tessel.efi')
    cmd += ['--boot', 'none' if boot is None else os.path.join(ROOT, boot)]
    cfg = g.get('cfg')
    entry_checked = (cfg is not None and g['emu'] == 'bochs' and os.environ.get('ENTRY_CHECK', '1') != '0'
                     and g.get('entry_check', True))
    if entry_checked:
        # Bochs 2.7 skips most VM-entry checks, so every Bochs group runs with Tessel's own
        # (check=entry, hv/entry_check.c): a VMCS real processors would refuse stops the run
        # with the rule's name. ENTRY_CHECK=0 turns it off (e.g. for timing).
        cfg += ('' if cfg.endswith('\n') or not cfg else '\r\n') + 'check=entry\r\n'
    if cfg is not None:
        path = os.path.join(inputs, 'tessel.cfg')
        with open(path, 'w', newline='') as f:
            f.write(cfg)
        cmd += ['--cfg', path]
    if g.get('startup') is not None:
        path = os.path.join(inputs, 'startup.nsh')
        with open(path, 'w', newline='') as f:
            f.write(g['startup'])
        cmd += ['--startup', path]
    for src, dst in g.get('copy', []):
        cmd += ['--copy', f'{os.path.join(ROOT, src)}={dst}']
    model = g.get('model') or os.environ.get('MODEL') or 'corei7_icelake_u'
    # check=entry reads about a hundred VMCS fields per exit: under Bochs a Linux boot takes
    # about 1.4 times as long (linux-hw: 195 s without, 278 s with), so checked groups get
    # half as much time again before they count as hung.
    timeout = g.get('timeout', 300)
    if entry_checked:
        timeout = timeout * 3 // 2
    cmd += ['--cpus', str(g.get('cpus', 2)), '--model', model, '--timeout', str(timeout)]
    if g.get('mem'):
        cmd += ['--mem', str(g['mem'])]
    if g.get('msrs'):
        cmd += ['--msrs', os.path.join(ROOT, g['msrs'])]
    if g.get('until'):
        cmd += ['--until', g['until'], '--grace', str(g.get('grace', 5))]
    if g.get('disk'):
        cmd += ['--disk', os.path.join(ROOT, g['disk'])]
    desc = f"{g['emu']}" + (f' {model}' if g['emu'] == 'bochs' else '') + f", {g.get('cpus', 2)} CPUs"
    out(f'=== {name} ({desc})')
    missing = [p for p in [boot, g.get('disk')] + [s for s, _ in g.get('copy', [])]
               if p and not os.path.exists(os.path.join(ROOT, p))]
    if missing:
        out(f'{name}: not ok - missing {", ".join(missing)} (build first)')
        return 0, 1, 'missing files'
    env = dict(os.environ, QEMU_EXTRA=g.get('qemu_args', ''))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.stdout:
        out(r.stdout.rstrip('\n'))
    if r.returncode != 0:
        if r.stderr:
            out(r.stderr.rstrip('\n'))
        out(f'{name}: not ok - runner failed with status {r.returncode}')
        return 0, 1, 'runner failed'
    run = os.path.join(ROOT, 'build', 'run', name)
    status = {}
    with open(os.path.join(run, 'status')) as f:
        for line in f:
            k, _, v = line.strip().partition('=')
            status[k] = v
    text = tapcheck.read_log(os.path.join(run, 'serial.log'))
    timed_out = status.get('ended') == 'timeout' and not g.get('timeout_ok')
    passed = failed = 0
    if g.get('tap'):
        p, f = tapcheck.check(name, text, timed_out, out=out)
        passed, failed = p, f
    elif timed_out:
        out(f'{name}: not ok - timed out')
        failed += 1
    lines = tapcheck.clean_lines(text)
    for label, rx in g.get('expect', []):
        hit = any(re.search(rx, line) for line in lines)
        out(f'{name}: {"ok" if hit else "not ok"} - {label}' + ('' if hit else f' (no match for /{rx}/)'))
        passed, failed = passed + hit, failed + (not hit)
    reject = list(g.get('reject', []))
    if entry_checked:
        reject.append(('VMCS passes the VM-entry checks (check=entry)', r'VM-entry check'))
    for label, rx in reject:
        hits = [line for line in lines if re.search(rx, line)]
        out(f'{name}: {"not ok" if hits else "ok"} - {label}' + (f' (saw: {hits[0].strip()[:100]})' if hits else ''))
        passed, failed = passed + (not hits), failed + bool(hits)
    summary = f"ended={status.get('ended')} wall={status.get('wall')}s"
    out(f'{name}: {passed} passed, {failed} failed ({summary}; log {os.path.relpath(run, ROOT)}/serial.log)')
    return passed, failed, summary


def jobs():
    """How many emulators run at once: JOBS in the environment, else one per CPU (Bochs runs
    a guest on one host thread; its time is emulated, clock sync=none, so a group's results
    do not depend on how busy the host is, only its wall time does)."""
    try:
        return max(1, int(os.environ.get('JOBS') or os.cpu_count() or 1))
    except ValueError:
        return 1


def run_booted(todo, n):
    """Runs the booting groups, n at a time, the Linux boots (the longest) first. Each group's
    report is printed whole when it ends, so reports never interleave. Returns name -> result."""
    if n == 1:
        return {g['name']: run_group(g, out=lambda line: print(line, flush=True)) for g in todo}
    order = sorted(todo, key=lambda g: not g['name'].startswith('linux'))
    lock = threading.Lock()

    def one(g):
        lines = []
        r = run_group(g, out=lines.append)
        with lock:
            print('\n'.join(lines), flush=True)
        return r
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        futures = {g['name']: pool.submit(one, g) for g in order}
        return {name: f.result() for name, f in futures.items()}


def main(argv):
    todo = selected(argv)
    results = []
    done = set()
    # The groups that boot run first (side by side); the comparing groups, which read the logs
    # of groups in this same run, after them, in their order.
    booted = run_booted([g for g in todo if g['emu'] != 'check'], jobs())
    for g in todo:
        p, f, s = run_check(g, done) if g['emu'] == 'check' else booted[g['name']]
        if g['emu'] != 'check' and s not in ('missing files', 'runner failed'):
            done.add(g['name'])
        results.append((g['name'], p, f, s))
    if results:
        print('--- system test summary')
        for name, p, f, s in results:
            print(f'{"PASS" if f == 0 and p > 0 else "FAIL"} {name:24} {p:4} passed {f:4} failed  {s}')
    tp = sum(r[1] for r in results)
    tf = sum(r[2] for r in results) + sum(1 for r in results if r[1] == 0 and r[2] == 0)
    print(f'system: {tp} passed, {tf} failed')
    return 1 if tf else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
