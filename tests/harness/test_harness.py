#!/usr/bin/env python3
"""test_harness.py: the harness's own cross-log checks (groups_linux.py) against made-up logs,
so that each can be seen to fail: a new boot warning, a region outside the Reserved ranges,
different conformance results in the two modes. Prints "harness: N passed, N failed"."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import groups_linux as L  # noqa: E402
import tapcheck  # noqa: E402

passed = failed = 0


def point(ok, label):
    global passed, failed
    print(f'harness: {"ok" if ok else "not ok"} - {label}')
    passed, failed = passed + bool(ok), failed + (not ok)


REGION = '[tessel] I: Tessel core: region 19e00000-1be00000 (32 MiB), 2 CPUs'
RESERVED = 'iomem: 19e00000-1bdfffff : Reserved'
point(L.region_reserved([REGION, RESERVED])[0], 'region inside a Reserved range is accepted')
point(not L.region_reserved([REGION, 'iomem: 19e00000-1bcfffff : Reserved'])[0],
      'a Reserved range that ends early is refused')
point(not L.region_reserved([REGION])[0], 'no Reserved range at all is refused')
point(not L.region_reserved([RESERVED])[0], 'no region line is refused')

K = 'bxacpi: starting vmlinuz.efi initrd=\\initrd.img'
S = '[cpu1] I: SIPI: the guest starts this CPU in real mode at 9a000'
point(L.linux_sipi([K, S])[0], 'a SIPI after the kernel start is accepted')
point(not L.linux_sipi([S, K])[0], 'a SIPI only before the kernel start (firmware) is refused')

native = ['bootwarn: <4> acpi PNP0A03:00: fail at 0x1000', 'GUEST-BOOTWARN-END']
same = ['bootwarn: <4> acpi PNP0A03:00: fail at 0x2000', 'GUEST-BOOTWARN-END']
new = same + ['bootwarn: <3> x86/cpu: something new 12']


def compare(hw, sw, native_icl, native_skx):
    return L._compare({'linux-hw': hw, 'linux-sw': sw, 'linux-native-icelake': native_icl,
                       'linux-native-skylake': native_skx})


tap = ['1..2', 'ok 1 - a', 'ok 2 - b']
base = [REGION, RESERVED, K, S]
r = compare(base + same + tap, base + same + tap, native, native)
point(all(ok for _, ok, _ in r), 'same warnings (numbers masked) and same TAP: every point passes')
r = compare(base + new + tap, base + same + tap, native, native)
point([ok for label, ok, _ in r if 'boot warning' in label] == [False, True], 'a new warning under Tessel fails')
r = compare(base + same + tap, base + same + ['1..2', 'ok 1 - a', 'not ok 2 - b'], native, native)
point(not r[-1][1], 'different conformance results fail')
r = compare(base + same, base + same, native, native)
point(not r[-1][1], 'no conformance results at all fail')
r = compare(base + tap, base + same + tap, native, native)
point(not [ok for label, ok, _ in r if 'collected' in label][0], 'a log without GUEST-BOOTWARN-END fails')

# The hypervisor's log shares the serial port with the guest's console: a hypervisor line
# written while Linux's console is in the middle of a line splits that line (seen in
# linux-guard-hw, where the test module's refused CR4 write and LIDT are logged by the
# hypervisor while the guard's load lines are still being printed). clean_lines takes the
# hypervisor's lines out and joins the guest's line again.
split = ('tessel: guard: ptrace_scope 1-2 (4 bytes), neighbours writable: aa_g_debug, aa'
         '[cpu1] W: pin: guest write 0x270ea0 to CR4 at rip 0xffffffffc023213b would clear pinned bits: kept set\r\n'
         '_g_profile_mode, apparmor_initia[cpu1] W: pin: guest load of IDTR base 0xffff8a2edc13c000 refused (pinned)\r\n'
         '[cpu0] I: another hypervisor line\r\n'
         'lized, kernel_t\r\n'
         'tessel: guard: idt_table 3-4 (4096 bytes)\r\n'
         '[cpu0] I: a hypervisor line of its own\r\n')
lines = tapcheck.clean_lines(split)
point('tessel: guard: ptrace_scope 1-2 (4 bytes), neighbours writable: aa_g_debug, aa_g_profile_mode, '
      'apparmor_initialized, kernel_t' in lines, 'a guest line split by hypervisor lines is joined again')
point('[cpu1] W: pin: guest write 0x270ea0 to CR4 at rip 0xffffffffc023213b would clear pinned bits: kept set' in lines
      and '[cpu1] W: pin: guest load of IDTR base 0xffff8a2edc13c000 refused (pinned)' in lines
      and '[cpu0] I: another hypervisor line' in lines,
      'the hypervisor lines written into it are lines of their own')
point(lines[-3:] == ['tessel: guard: idt_table 3-4 (4096 bytes)', '[cpu0] I: a hypervisor line of its own', ''],
      'lines after the split are unchanged')
print(f'harness: {passed} passed, {failed} failed')
sys.exit(1 if failed else 0)
