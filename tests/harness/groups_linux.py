"""groups_linux.py: Debian's Linux as the guest (issue 5; tools/linux/README.md).

The same kernel, initramfs (busybox, tools/linux/init, the guest driver tessel.ko and the
conformance program tessel-conform) and command line boot four ways:
  linux-native-icelake, linux-native-skylake  Bochs without Tessel (the ACPI loader is the boot
                                             file): the reference boot logs; the driver refuses
  linux-hw, linux-sw                         under Tessel, hardware SPP (Ice Lake) and software
                                             mode (Skylake-X): the conformance TAP must pass
  linux-qemu                                 QEMU TCG, no VMX, no Tessel: the driver refuses
and linux-compare then checks across them: no warning in a Tessel boot log that the same CPU
model's native boot did not print, and identical conformance results in both modes.
"""
import re

ICELAKE, SKYLAKE = 'corei7_icelake_u', 'corei7_skylake_x'
_COPY = [('build/linux/acpi-loader.efi', 'acpi-loader.efi'), ('build/linux/vmlinuz.efi', 'vmlinuz.efi'),
         ('build/linux/initrd.img', 'initrd.img'), ('build/linux/cmdline.txt', 'cmdline.txt')]
_STARTED = r'tessel: hypervisor started on [0-9]+ CPUs'
_UP = r'^GUEST-LINUX-UP cpus=2 hypervisor-flag=%s mode=test'
_DONE = ('/init finished', r'^GUEST-LINUX-DONE')
# The runs end on the power-off line itself (not on GUEST-LINUX-DONE plus a grace period,
# which a slow host can outlast before /init's last sleep and the power-off are through).
_OFF = ('the guest powers off cleanly', r'reboot: Power down')
_EFI = ('EFI runtime services work after SetVirtualAddressMap (variables listed and read)',
        r'^GUEST-EFI-RUNTIME variables=[1-9][0-9]* PlatformLang=en')
_REFUSED = r'^GUEST-DRIVER-REFUSED .*No such device'
_NO_PANIC = [('no vCPU stopped', r'stopping this vCPU'), ('no hypervisor panic', r'TESSEL PANIC'),
             ('no kernel oops or BUG', r'(Oops|BUG:|Kernel panic|general protection fault)')]


def _bochs(name, model, tessel):
    g = dict(name=name, emu='bochs', model=model, cpus=2, mem=512, msrs='tools/linux/msrs-misc-enable.def',
             copy=list(_COPY), timeout=300, until=r'reboot: Power down', grace=2, reject=list(_NO_PANIC))
    if tessel:
        mode = 'hardware' if model == ICELAKE else 'software'
        g.update(cfg='next=\\acpi-loader.efi\r\n', tap=True, expect=[
            ('hypervisor started', _STARTED),
            ('Linux reached /init with 2 CPUs and the hypervisor flag on both', _UP % 2),
            _EFI,
            (f'the driver loaded, {mode} sub-page protection', rf'^GUEST-DRIVER-LOADED mode={mode} vector=0xf1'),
            _DONE, _OFF])
    else:
        g.update(boot='build/linux/acpi-loader.efi', cfg=None, expect=[
            ('Linux reached /init with 2 CPUs, no hypervisor flag', _UP % 0),
            ('the driver refuses to load', _REFUSED),
            ('... and says why', r'tessel: the Tessel hypervisor is not present \(no hypervisor: CPUID\.1:ECX\[31\] = 0\); not loading'),
            _EFI, _DONE, _OFF])
    return g


LINUX_GROUPS = [
    _bochs('linux-native-icelake', ICELAKE, False),
    _bochs('linux-native-skylake', SKYLAKE, False),
    _bochs('linux-hw', ICELAKE, True),
    _bochs('linux-sw', SKYLAKE, True),
    # QEMU's OVMF has ACPI tables, so the kernel starts straight from the shell.
    dict(name='linux-qemu', emu='qemu', cpus=2, mem=512, boot=None, cfg=None,
         startup='fs0:\\vmlinuz.efi initrd=\\initrd.img console=ttyS0,115200 quiet\r\n',
         copy=[c for c in _COPY if c[1] in ('vmlinuz.efi', 'initrd.img')], timeout=240,
         until=r'reboot: Power down', grace=2, reject=list(_NO_PANIC),
         expect=[('Linux reached /init with 2 CPUs (QEMU TCG, no VMX)', r'^GUEST-LINUX-UP cpus=2 hypervisor-flag=\d mode=test'),
                 ('the driver refuses to load', _REFUSED),
                 ('... and says why', r'tessel: the Tessel hypervisor is not present \(.*\); not loading'),
                 _EFI, _DONE, _OFF]),
]

# ---- linux-compare ----
_WARN = re.compile(r'^bootwarn: (<\d>) (.*)$')
_TAP = re.compile(r'^(not )?ok \d+')


def _norm(msg):
    """A warning without the numbers that differ between boots (addresses, sizes, times)."""
    msg = re.sub(r'0x[0-9a-fA-F]+|\b[0-9a-fA-F]{8,}\b', '#', msg)
    return re.sub(r'\d+', '#', msg)


def warnings(lines):
    return {(m.group(1), _norm(m.group(2))) for m in map(_WARN.match, lines) if m}


def tap_results(lines):
    start = max((i for i, line in enumerate(lines) if re.match(r'^1\.\.\d+', line)), default=None)
    if start is None:
        return []
    return [line.strip() for line in lines[start:] if _TAP.match(line)]


_REGION = re.compile(r'Tessel core: region ([0-9a-f]+)-([0-9a-f]+) ')
_IOMEM = re.compile(r'^iomem: ([0-9a-f]+)-([0-9a-f]+) : Reserved')


def region_reserved(lines):
    """(ok, detail): the hypervisor's region lies inside one Reserved range of /proc/iomem."""
    region = next((m for m in map(_REGION.search, lines) if m), None)
    if not region:
        return False, 'no region line from the hypervisor'
    base, end = int(region.group(1), 16), int(region.group(2), 16)  # end exclusive
    ranges = [(int(m.group(1), 16), int(m.group(2), 16)) for m in map(_IOMEM.match, lines) if m]
    hit = [r for r in ranges if r[0] <= base and end - 1 <= r[1]]
    return bool(hit), (f'region {base:x}-{end:x}; ' +
                       (f'inside {hit[0][0]:x}-{hit[0][1]:x}' if hit else f'Reserved ranges: {ranges}'))


_KERNEL = re.compile(r'^bxacpi: starting vmlinuz\.efi')
_SIPI = re.compile(r'SIPI: the guest starts this CPU in real mode at ([0-9a-f]+)')


def linux_sipi(lines):
    """(ok, detail): after the kernel started, the hypervisor delivered SIPIs. Seen on OVMF +
    Bochs: one from the firmware parking its APs at ExitBootServices, then Linux's own (its
    trampoline, e.g. 99000). Together with cpus=2 and the hypervisor flag on both CPUs (the AP
    runs as a vCPU, so only the hypervisor could have started it) this shows Linux's INIT/SIPI
    went through the ICR intercept."""
    start = next((i for i, line in enumerate(lines) if _KERNEL.match(line)), None)
    if start is None:
        return False, 'no kernel start line'
    hits = [m.group(1) for m in map(_SIPI.search, lines[start:]) if m]
    return bool(hits), f'SIPIs after the kernel started: {", ".join(hits) or "none"}'


def _compare(logs):
    out = []
    for tessel in ('linux-hw', 'linux-sw'):
        ok, detail = region_reserved(logs[tessel])
        out.append((f'{tessel}: Linux sees the hypervisor region as Reserved in /proc/iomem', ok, detail))
        ok, detail = linux_sipi(logs[tessel])
        out.append((f'{tessel}: the hypervisor delivered SIPIs after the kernel started', ok, detail))
    for tessel, native in (('linux-hw', 'linux-native-icelake'), ('linux-sw', 'linux-native-skylake')):
        ended = [n for n in (tessel, native) if not any(l.startswith('GUEST-BOOTWARN-END') for l in logs[n])]
        if ended:
            out.append((f'{tessel} vs {native}: both boot logs were collected', False, f'none from {", ".join(ended)}'))
            continue
        new = sorted(warnings(logs[tessel]) - warnings(logs[native]))
        same = sorted(warnings(logs[tessel]) & warnings(logs[native]))
        out.append((f'{tessel}: no boot warning that {native} (same CPU, no Tessel) did not print',
                    not new, '\n'.join(f'new: {lv} {m}' for lv, m in new) or
                    '\n'.join(f'both: {lv} {m}' for lv, m in same) or None))
    hw, sw = tap_results(logs['linux-hw']), tap_results(logs['linux-sw'])
    diff = [f'hw: {a} / sw: {b}' for a, b in zip(hw, sw) if a != b]
    out.append(('the conformance program gives identical results in hardware and software mode',
                bool(hw) and len(hw) == len(sw) and not diff,
                f'{len(hw)} vs {len(sw)} results; ' + '; '.join(diff[:3]) if (diff or len(hw) != len(sw) or not hw) else None))
    return out


LINUX_GROUPS.append(dict(name='linux-compare', emu='check', check=_compare,
                         needs=['linux-native-icelake', 'linux-native-skylake', 'linux-hw', 'linux-sw']))

# ---- linux-s3: ACPI S3 under Tessel (docs/ABI.md section 8, tools/linux/init mode s3) ----
# The Bochs boots' ACPI tables are installed by the ACPI loader after Tessel has started, so
# the loader's \_S3 hiding does not reach them: Linux offers "deep" (S3). Asked for it, the
# kernel writes SLP_TYP = S3 with SLP_EN to PM1a_CNT; the hypervisor refuses it (Bochs would
# reset the machine), ACPICA sees WAK_STS and Linux resumes with both CPUs; the protection
# still holds afterwards (tessel-conform demo: the write to the protected sub-page is denied).
_S3 = _bochs('linux-s3', ICELAKE, True)
_S3.update(copy=[c if c[1] != 'cmdline.txt' else ('build/linux/cmdline-s3.txt', 'cmdline.txt') for c in _COPY],
           tap=False, timeout=420, expect=[
               ('hypervisor started', _STARTED),
               ('Linux reached /init with 2 CPUs and the hypervisor flag on both',
                r'^GUEST-LINUX-UP cpus=2 hypervisor-flag=2 mode=s3'),
               ('the tables offer S3, so Linux offers deep', r'^GUEST-S3-STATES .*mem_sleep=\[.*deep'),
               ('Linux is asked for S3', r'^GUEST-S3-ENTER mem_sleep=\[s2idle \[deep\]\]'),
               ('the hypervisor refuses the S3 write',
                r'pm1: guest wrote [0-9a-f]+ to port b004 \(PM1a_CNT\): sleep type 1 \(S3\) refused'),
               ('Linux comes back from the refused sleep with both CPUs online', r'^GUEST-S3-BACK status=\d+ online=0-1'),
               ('the protection holds afterwards (a write to a protected sub-page is denied)',
                r'^demo: 8-byte write at \+0x900 \(protected sub-page 18\).*memory unchanged \(write denied\)'),
               ('the driver loaded', r'^GUEST-DRIVER-LOADED mode=hardware'),
               _DONE, _OFF])
LINUX_GROUPS.append(_S3)

# ---- linux-guard-hw, linux-guard-sw: the kernel guard (tools/linux/README.md "The kernel
# guard", tools/linux/driver/guard.c) against the malicious test module tests/linux/evil/ ----
# tools/linux/init mode guard (cmdline-guard.txt) loads tessel_guard.ko, then
# tessel-guard-demo loads tessel_evil.ko, whose TAP lines (one per attack, checked on the bytes
# and registers afterwards) are the group's TAP stream, while a busybox fork/exec/pipe workload
# checks its own results. Each refusal must appear in the log with the symbol hit, the writing
# function of the test module, a CPU and the process. Warnings after boot (runwarn:) other
# than the guard's own refusal lines and the out-of-tree-module taint notes fail the group.
_X = r'[0-9a-f]{16}'


def _denied(target, func):
    return rf'^tessel: denied write to {target} by {_X} \({func}\+0x[0-9a-f]+ \[tessel_evil\]\) on cpu [01], comm insmod$'


# guard_gdt=1, guard_text=1: the extra attacks are refused and named, Linux's own rewrites of
# the GDT's TLS slots at each context switch are counted and not logged.
_GUARD_OPT = [
    ('the guard covers each GDT', r'^tessel: guard: the GDT of each CPU \(128 bytes each\)$'),
    ('the guard covers the kernel text', r'^tessel: guard: kernel text .* pages whole'),
    ('call gate in the GDT: refused', r'^ok 9 - call gate in the GDT refused: gdt_page\[cpu[01]\] slots 10-11 unchanged$'),
    ('call gate in the GDT: named log line', _denied(r'gdt_page\[cpu[01]\]\+0x50', 'evil_gdt')),
    ('kernel text patch: refused', r"^ok 10 - kernel text patch refused: sys_ni_syscall's first byte unchanged"),
    ('kernel text patch: named log line', _denied(r'sys_ni_syscall\+0x0', 'evil_text')),
    ("call gate in the GDT's TLS slots: refused",
     r"^ok 11 - call gate in the GDT's TLS slots refused: gdt_page\[cpu[01]\] slots 12-13 unchanged$"),
    ("call gate in the GDT's TLS slots: named log line (the TLS-rewrite filter lets it through)",
     _denied(r'gdt_page\[cpu[01]\]\+0x60', 'evil_gdt')),
    ("Linux's unchanged TLS-slot rewrites counted, not logged",
     r'^refusals counted by the guard: writes [1-9]\d?, registers 3, unchanged GDT TLS rewrites [1-9]\d*$'),
]
_GUARD_DEFAULT = [
    ('GDT attack skipped (guard_gdt=0)', r'^ok 9 # skip call gate in the GDT refused: the guard does not guard the GDT'),
    ('kernel text attack skipped (guard_text=0)', r'^ok 10 # skip kernel text patch refused: the guard does not guard the kernel text'),
    ("GDT TLS-slot attack skipped (guard_gdt=0)", r"^ok 11 # skip call gate in the GDT's TLS slots refused: the guard does not guard the GDT"),
    ('no TLS rewrites without guard_gdt', r'^refusals counted by the guard: writes [1-9]\d?, registers 3, unchanged GDT TLS rewrites 0$'),
]


# CPU hotplug after the guard (guard_text=0 only: with guard_text=1 offlining stops on the
# refused static-key text patch, by design): cpu1's INIT disarms its IDTR pin, its bring-up
# re-arms it (and the guard's CPU-online hook pins a CPU that had no value), and the forged
# LIDT run again on cpu1 is refused and named.
_HOTPLUG = [
    ('cpu1 offlined and onlined again after the guard loaded', r'^GUEST-GUARD-HOTPLUG cpu1 offline=1 online=1$'),
    ('the forged LIDT again, on cpu1 after its INIT: refused', r'^on demand: ok - LIDT of a forged IDT refused: IDTR still '),
    ('... and named, on cpu 1',
     rf'^tessel: denied load of IDTR base 0x[0-9a-f]+ limit 0xfff by {_X} \(evil_lidt\+0x[0-9a-f]+ \[tessel_evil\]\) on cpu 1, comm sh$'),
]
_HOTPLUG_SKIPPED = [
    ('CPU hotplug skipped with guard_text=1', r'^GUEST-GUARD-HOTPLUG skipped: guard_text=1 '),
]


def _guard(name, model, opt=False):
    """opt: the guard runs with guard_gdt=1 guard_text=1 (cmdline-guard-opt.txt), so the test
    module's GDT and kernel-text attacks run (else they are skipped, and that is checked)."""
    cmdline = 'build/linux/cmdline-guard-opt.txt' if opt else 'build/linux/cmdline-guard.txt'
    g = _bochs(name, model, True)
    mode = 'hardware' if model == ICELAKE else 'software'
    g.update(copy=[c if c[1] != 'cmdline.txt' else (cmdline, 'cmdline.txt') for c in _COPY],
             timeout=480, expect=[
                 ('hypervisor started', _STARTED),
                 ('Linux reached /init with 2 CPUs and the hypervisor flag on both',
                  r'^GUEST-LINUX-UP cpus=2 hypervisor-flag=2 mode=guard'),
                 (f'the driver loaded, {mode} sub-page protection', rf'^GUEST-DRIVER-LOADED mode={mode} vector=0xf1'),
                 ('the guard covers modprobe_path, byte-precise (its neighbours in the same sub-pages writable)',
                  r'^tessel: guard: modprobe_path [0-9a-f]+-[0-9a-f]+ \(256 bytes\), sub-pages \d+-\d+ of pfn 0x[0-9a-f]+; byte-precise, neighbours writable: '),
                 ('the guard covers the IDT whole', r'^tessel: guard: idt_table [0-9a-f]+-[0-9a-f]+ \(4096 bytes\), sub-pages 0-31'),
                 ('the guard covers the read-only data', r'^tessel: guard: read-only data .* pages whole'),
                 ('the guard pinned CR0.WP and CR4.SMEP', r'^tessel: guard: pinned CR0 0x10000 \(WP\), CR4 0x[0-9a-f]+ \((UMIP,)?SMEP[,)]'),
                 ('the guard pinned the system-call MSRs', r'^tessel: guard: pinned MSRs: LSTAR CSTAR STAR FMASK SYSENTER_CS SYSENTER_EIP EFER$'),
                 ('the guard pinned IDTR and GDTR', r'^tessel: guard: pinned IDTR GDTR \(mask 0x3\)$'),
                 ('the guard is active and locked', rf'^tessel: guard: active: \d+ objects, \d+ pages \(locked\), {mode} sub-page protection'),
                 ('modprobe_path overwrite: named log line', _denied(r'modprobe_path\+0x0', 'evil_modprobe')),
                 ('CR0.WP clear: named log line', rf'^tessel: denied CR0 write clearing WP \(value 0x[0-9a-f]+\) by {_X} \(evil_cr0\+0x[0-9a-f]+ \[tessel_evil\]\) on cpu [01], comm insmod$'),
                 ('sys_call_table patch through an alias: named log line', _denied(r'sys_call_table\+0x8', 'evil_syscall')),
                 ('CR4.SMEP clear: named log line', rf'^tessel: denied CR4 write clearing SMEP \(value 0x[0-9a-f]+\) by {_X} \(evil_cr4\+0x[0-9a-f]+ \[tessel_evil\]\) on cpu [01], comm insmod$'),
                 ('IDT gate 0x80 overwrite: named log line', _denied(r'idt_table\+0x800', 'evil_idt')),
                 ('modprobe_path write through a vmap alias: named log line', _denied(r'modprobe_path\+0x10', 'evil_alias')),
                 ('forged-IDT LIDT: named log line',
                  rf'^tessel: denied load of IDTR base 0x[0-9a-f]+ limit 0xfff by {_X} \(evil_lidt\+0x[0-9a-f]+ \[tessel_evil\]\) on cpu [01], comm insmod$'),
                 ('byte-precise: a write to modprobe_path refused, the same write to its neighbours in the same sub-pages not',
                  r'^ok 12 - bytes sharing modprobe_path.s guarded sub-pages stay writable: modprobe_path\[0\] refusals \+1, .+ refusals \+0$'),
                 ('byte-precise: the refused write named', _denied(r'modprobe_path\+0x0', 'evil_subpage')),
                 ('the guard covers AppArmor\'s profile mode and the lockdown level',
                  r'^tessel: guard: aa_g_profile_mode [0-9a-f]+-[0-9a-f]+ \(\d+ bytes\)'),
                 ('... and the lockdown level', r'^tessel: guard: kernel_locked_down [0-9a-f]+-[0-9a-f]+ \(\d+ bytes\)'),
                 ('AppArmor complain mode: refused', r'^ok 13 - AppArmor complain mode refused: aa_g_profile_mode still 0$'),
                 ('AppArmor complain mode: named log line', _denied(r'aa_g_profile_mode\+0x0', 'evil_lsm')),
                 ('the test module saw every attack refused', r'^done: every attack refused'),
                 ("the hypervisor's counters in tessel.ko's sysfs: the refused writes, the 3 refused register loads, no DMA faults",
                  r'^counted by the hypervisor: spp_denied [1-9]\d*, pin_denied 3, dma_faults 0$'),
                 *(_GUARD_OPT if opt else _GUARD_DEFAULT),
                 ("root's sysctl write to core_pattern: refused and named",
                  rf'^tessel: denied write to core_pattern\+0x0 by {_X} \(\S+\+0x[0-9a-f]+\) on cpu [01], comm \S+$'),
                 ("... the rest of that copy loop's refused bytes in one line",
                  r'^tessel: denied [1-9]\d* more writes to the bytes after core_pattern\+0x0 by the same instruction at [0-9a-f]{16} on cpu [01]$'),
                 ('modprobe_path and core_pattern unchanged', r'^GUEST-GUARD-AFTER modprobe=/sbin/modprobe core_pattern=core$'),
                 *(_HOTPLUG_SKIPPED if opt else _HOTPLUG),
                 ('the workload ran throughout with correct results', r'^GUEST-GUARD-WORKLOAD rounds=([2-9]|[1-9]\d+) bad=0$'),
                 ('both CPUs still online', r'^GUEST-GUARD-ONLINE 0-1$'),
                 _DONE, _OFF])
    g['reject'] = list(_NO_PANIC) + [
        ('no kernel WARNING', r'WARNING: CPU'),
        ("the guard's CPU-online hook pins each CPU coming online", r'HC_PIN_DT on cpu \d+ coming online failed'),
        ('no warning after boot but the refusals and the module taint notes',
         r'^runwarn: (?!<\d> (tessel: denied |.*taints kernel|.*module verification failed))')]
    return g


LINUX_GROUPS += [_guard('linux-guard-hw', ICELAKE),
                 _guard('linux-guard-sw', SKYLAKE, opt=True)]
