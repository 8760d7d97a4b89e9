"""groups_hostile.py: the hostile-guest system-test groups (issue 9), in the dict format of
groups.py (see its docstring); groups.py imports HOSTILE_GROUPS.

Each group boots a guest program (tests/guest/hostile_*.c) that carries out attacks a guest
kernel can make on the hypervisor, then runs the common post-checks of
tests/guest/lib/hostile.h: every vCPU answers HC_NOP, the region reads 0xFF, protected bytes
are unchanged. Groups add 'expect' patterns for the documented log lines of the handling.
"""

HOSTILE_PATTERNS = {
    'started': r'tessel: hypervisor started on [0-9]+ CPUs',
    'vm_stopped': r'E: stopping this vCPU',
    'panic': r'TESSEL PANIC',
    'entry_failed': r'VM entry failed|VMRESUME failed',
}
_P = HOSTILE_PATTERNS

# Every hostile group rejects these: a guest may get an error or a fault, never stop a vCPU
# or the hypervisor.
HOSTILE_REJECT = [('no vCPU stopped', _P['vm_stopped']),
                  ('no hypervisor panic', _P['panic']),
                  ('no failed VM entry', _P['entry_failed'])]


def cfg(*lines):
    return ''.join(line + '\r\n' for line in lines)


HOSTILE_GROUPS = []

# hostile_churn.efi (tests/guest/hostile_churn.c, issue 9 item m): protect/unprotect churn
# across many 2 MiB blocks on a small heap; table memory (test build hook HC_TEST_TABLE_MEM,
# HC_STATS sppt_pages) must return to its starting level. Hardware SPP (eager and lazy SPPT)
# and the software path.
_CHURN = 'next=\\tests\\hostile_churn.efi'
HOSTILE_GROUPS += [
    dict(name='hostile-churn-hw', emu='bochs', model='corei7_icelake_u', cpus=2, mem=2048,
         boot='build/tessel-test.efi',
         cfg=cfg('# protect/unprotect churn, hardware SPP, eager SPPT, small heap', _CHURN, 'heap=8'),
         tap=True, timeout=240,
         expect=[('hypervisor started', _P['started'])],
         reject=HOSTILE_REJECT),
    dict(name='hostile-churn-lazy', emu='bochs', model='corei7_icelake_u', cpus=2, mem=2048,
         boot='build/tessel-test.efi',
         cfg=cfg('# protect/unprotect churn, hardware SPP, lazy SPPT, small heap', _CHURN, 'heap=8',
                 'sppt=lazy'),
         tap=True, timeout=240,
         expect=[('hypervisor started', _P['started'])],
         reject=HOSTILE_REJECT),
    dict(name='hostile-churn-sw', emu='bochs', model='corei7_skylake_x', cpus=2, mem=2048,
         boot='build/tessel-test.efi',
         cfg=cfg('# protect/unprotect churn, software path, small heap', _CHURN, 'heap=8'),
         tap=True, timeout=240,
         expect=[('hypervisor started', _P['started'])],
         reject=HOSTILE_REJECT),
]

# hostile_mtrr.efi (tests/guest/hostile_mtrr.c, issue 9): virtual MTRRs. Valid writes
# change the EPT memory type (test build hook HC_TEST_EPT_LEAF), invalid ones raise #GP,
# the host is unaffected. Hardware SPP and the software path.
_MTRR = 'next=\\tests\\hostile_mtrr.efi'
HOSTILE_GROUPS += [
    dict(name='hostile-mtrr-hw', emu='bochs', model='corei7_icelake_u', cpus=2,
         boot='build/tessel-test.efi',
         cfg=cfg('# guest MTRR writes, hardware SPP', _MTRR),
         tap=True, timeout=180,
         expect=[('hypervisor started', _P['started'])],
         reject=HOSTILE_REJECT),
    dict(name='hostile-mtrr-sw', emu='bochs', model='corei7_skylake_x', cpus=2,
         boot='build/tessel-test.efi',
         cfg=cfg('# guest MTRR writes, software path', _MTRR),
         tap=True, timeout=180,
         expect=[('hypervisor started', _P['started'])],
         reject=HOSTILE_REJECT),
]
