"""groups.py: the system-test groups run by systest.py, and the loader's serial messages they
look for. Every string the loader or hypervisor prints that a check depends on is in PATTERNS,
so a change of wording is a one-line change here.

A group is a dict:
  name      unique name; the run directory is build/run/<name>/
  emu       'bochs' or 'qemu'; or 'check': boots nothing, check(logs) compares the logs of
            the groups in needs (run earlier in the same invocation)
  model     Bochs CPU model (default corei7_icelake_u; MODEL in the environment overrides
            it for every Bochs group that does not set its own)
  cpus      CPU count (default 2)
  boot      file for \\EFI\\BOOT\\BOOTX64.EFI (default build/tessel.efi; None = none)
  cfg       text of \\EFI\\BOOT\\tessel.cfg (None = no file)
  startup   text of \\startup.nsh (None = no file)
  copy      list of (source, ESP path) extra files
  disk      a raw disk image (make image) to boot instead of an ESP folder (boot, cfg,
            startup and copy are then unused)
  tap       True: the serial log must hold a complete, passing TAP stream
  expect    list of (label, regex) that must match a line of the serial log
  reject    list of (label, regex) that must not match any line
  until     regex that ends the run early (after `grace` seconds) once it matched
  timeout   seconds (wall) before the run is stopped and counted as timed out
  timeout_ok  True: reaching the timeout is the expected way for the run to end
  qemu_args   (QEMU only) more QEMU arguments, e.g. '-device intel-iommu -device edu'
  entry_check False: no check=entry for this Bochs group (timing groups: the checker's VMCS
            reads on every exit would be counted)
The ESP always gets build/guest/*.efi under \\tests\\.
"""

# ---- what the loader prints (boot/main.c) and what the guests print ----
PATTERNS = {
    'started': r'tessel: hypervisor started on [0-9]+ CPUs',
    'chain': r'tessel: chain-loading ',
    'no_vmx': r'tessel: no VMX: \S',
    'cfg_error': r'tessel: config error: ',
    'cfg_line': r'tessel: configuration: ',
    'no_vmx_stop': r'tessel: no_vmx=stop',
    'hello_ran': r'^ok 1 - next stage ran',
    'tap_plan': r'^1\.\.[0-9]+',
    'shell_alive': r'^tessel-shell-alive',
}
P = PATTERNS

SHUTDOWN_NSH = '@echo -off\r\nreset -s\r\n'

GROUPS = [
    dict(name='foundation', emu='bochs', cpus=2,
         cfg='# foundation: hypervisor checks against ABI.md\r\nnext=\\tests\\foundation.efi\r\n',
         tap=True, timeout=180,
         expect=[('hypervisor started', P['started']),
                 ('chain-loads foundation.efi', P['chain'] + r'.*foundation\.efi')]),
    dict(name='hvregion', emu='bochs', cpus=2,
         cfg='next=\\tests\\hvregion.efi\r\n',
         tap=True, timeout=300,
         expect=[('hypervisor started', P['started'])]),
    dict(name='firmware', emu='bochs', cpus=2,
         cfg='next=\\tests\\firmware.efi\r\n',
         tap=True, timeout=180,
         expect=[('hypervisor started', P['started']),
                 ('chain-loads firmware.efi', P['chain'] + r'.*firmware\.efi')]),
    # Started from the shell with a command-line argument, no chain-load; the shell goes on.
    dict(name='shell', emu='bochs', cpus=2, boot=None,
         copy=[('build/tessel.efi', 'tessel.efi')],
         startup='@echo -off\r\nfs0:\r\n\\tessel.efi log=debug\r\n\\tests\\shellcheck.efi\r\n'
                 'echo tessel-shell-alive\r\nreset -s\r\n',
         tap=True, timeout=180,
         expect=[('shell command line accepted (log=debug)', P['cfg_line'] + r'.*log=debug'),
                 ('hypervisor started from the shell', P['started']),
                 ('shell still runs commands afterwards', P['shell_alive'])],
         reject=[('no chain-load without next=', P['chain'])]),
    # An unknown key on line 3: the error names file, line and key; nothing starts.
    dict(name='badcfg', emu='bochs', cpus=2,
         cfg='next=\\tests\\hello.efi\r\nlog=info\r\ncolour=blue\r\n',
         startup=SHUTDOWN_NSH, timeout=180, until=P['cfg_error'], grace=15,
         expect=[('config error names file, line 3 and key',
                  P['cfg_error'] + r'.*tessel\.cfg:3: colour: ')],
         reject=[('hypervisor not started', P['started']),
                 ('next stage not chain-loaded', P['chain']),
                 ('next stage did not run', P['hello_ran'])]),
    # QEMU TCG has no VMX: the loader says why and goes on (no_vmx=continue, the default).
    dict(name='qemu-novmx-continue', emu='qemu', cpus=2,
         cfg='next=\\tests\\hello.efi\r\n',
         tap=True, timeout=120,
         expect=[('no-VMX reason on serial', P['no_vmx']),
                 ('next stage chain-loaded', P['chain'] + r'.*hello\.efi'),
                 ('next stage ran', P['hello_ran'])],
         reject=[('hypervisor not started', P['started'])]),
    dict(name='qemu-novmx-stop', emu='qemu', cpus=2,
         cfg='next=\\tests\\hello.efi\r\nno_vmx=stop\r\n',
         startup=SHUTDOWN_NSH, timeout=120, until=P['no_vmx'], grace=15,
         expect=[('no-VMX reason on serial', P['no_vmx'])],
         reject=[('hypervisor not started', P['started']),
                 ('next stage not chain-loaded', P['chain']),
                 ('next stage did not run', P['hello_ran'])]),
]

# Triple fault: the hypervisor logs it and resets the platform. The run ends at the log line:
# OVMF's warm-reset path does not come back up on Bochs 2.7 (it polls the ACPI PM timer at an
# unprogrammed base), so the second boot cannot be observed here (tests/guest/triplefault.c
# reports it where it can).
GROUPS.append(dict(name='triplefault', emu='bochs', cpus=2,
                   cfg='next=\\tests\\triplefault.efi\r\n', timeout=150,
                   until=r'guest triple fault at RIP', grace=3,
                   expect=[('the guest reached its triple fault', r'^# triplefault: first boot, triple-faulting now'),
                           ('hypervisor logs the triple fault and resets', r'guest triple fault at RIP [0-9a-f]+: resetting the platform')],
                   reject=[('the guest did not run on after the fault', r'still running after the fault'),
                           ('no vCPU stopped', r'stopping this vCPU')]))

# All-or-nothing start (hv/start.c): a core whose first VM entry fails on one processor (an AP:
# failentry1, after the BSP started, which must leave again; the BSP: failentry0, the first).
# The loader reports the processor, every processor that had started leaves VMX again, the
# region is freed, and with no_vmx=continue the next stage runs with no hypervisor anywhere.
# With 3 CPUs and the second AP failing, the first AP has started and must leave too.
for _cpu, _who, _n in (('1', 'an AP', 2), ('0', 'the BSP', 2), ('2', 'the second AP', 3)):
    GROUPS.append(dict(
        name=f'start-fail-cpu{_cpu}', emu='bochs', cpus=_n, boot=f'build/tessel-failentry{_cpu}.efi',
        cfg='next=\\tests\\novmx.efi\r\n', tap=True, timeout=180,
        expect=[(f'the failed first entry on {_who} is reported', r'the first VM entry failed \(exit reason 33'),
                ('the loader names the processor', r'tessel: (processor %s did not start|the bootstrap processor did not start)' % _cpu),
                ('the start is undone', r'tessel: the start failed; ([0-9]+ processors? left VMX operation again|no processor is running the hypervisor)'),
                ('the next stage is chain-loaded', P['chain'] + r'.*novmx\.efi')],
        reject=[('hypervisor not reported as started', P['started']),
                ('no vCPU stopped', r'stopping this vCPU')]))

# The installable image (make image, tools/mkimage.sh) booted as a disk, as from a USB stick:
# in Bochs the hypervisor starts and chain-loads the demo from the image's tessel.cfg; in QEMU
# (no VMX) the loader says why and the demo runs without a hypervisor.
_IMG = 'build/tessel.img'
GROUPS.append(dict(name='image-bochs', emu='bochs', cpus=2, disk=_IMG, timeout=240,
                   expect=[('hypervisor started from the disk image', P['started']),
                           ('chain-loads the demo named in the image\'s tessel.cfg',
                            P['chain'] + r'.*\\EFI\\tessel\\demo\.efi'),
                           ('the demo ran under Tessel', r'Every protected sub-page kept its bytes')],
                   reject=[('no vCPU stopped', r'stopping this vCPU')]))
GROUPS.append(dict(name='image-qemu', emu='qemu', cpus=2, disk=_IMG, timeout=120,
                   until=r'No Tessel hypervisor underneath', grace=3,
                   expect=[('no-VMX reason on serial', P['no_vmx']),
                           ('the demo ran without a hypervisor', r'No Tessel hypervisor underneath')],
                   reject=[('hypervisor not started', P['started'])]))

# Groups defined beside their programs (sub-page protection, the UEFI shell tool).
try:
    from groups_tools import TOOLS_GROUPS
    GROUPS += TOOLS_GROUPS
except ImportError:
    pass
try:
    from groups_spp import SPP_GROUPS
    GROUPS += SPP_GROUPS
except ImportError:
    pass
try:
    from groups_iommu import IOMMU_GROUPS
    GROUPS += IOMMU_GROUPS
except ImportError:
    pass
try:
    from groups_hostile import HOSTILE_GROUPS
    GROUPS += HOSTILE_GROUPS
except ImportError:
    pass
from groups_linux import LINUX_GROUPS  # noqa: E402
GROUPS += LINUX_GROUPS

# Soft reset through port 0xCF9 (issue 10, INIT/SIPI; tests/guest/softreset.c): the hypervisor
# intercepts the reset ports (hv/exit_io.c) and sends every vCPU an INIT; the BSP restarts at
# the reset vector under the hypervisor. OVMF's warm reset does not come back up on Bochs 2.7
# (see triplefault), so the run ends at the hypervisor's log line of the BSP's first VM exit
# after the INIT, which must be in the firmware's reset path at the top of the 4 GiB space.
GROUPS.append(dict(name='softreset', emu='bochs', cpus=2,
                   cfg='next=\\tests\\softreset.efi\r\n', timeout=150,
                   until=r'BSP after INIT: first VM exit', grace=3,
                   expect=[('the guest wrote the reset register', r'^# softreset: hypervisor present, writing 4 to port CF9 now'),
                           ('the hypervisor turns it into INIT of every vCPU',
                            r'guest wrote 4 to port cf9: soft reset, INIT to every vCPU'),
                           ('the BSP restarts at the reset vector',
                            r'INIT to the bootstrap processor: it restarts at the reset vector FFFFFFF0'),
                           ('the BSP runs the firmware from the reset vector (first exit there)',
                            r'BSP after INIT: first VM exit \(reason [0-9]+\) at CS f000 base ffff0000, RIP [0-9a-f]+')],
                   reject=[('the guest did not run on after the reset', r'still running after the reset request'),
                           ('no vCPU stopped', r'stopping this vCPU'),
                           ('no hypervisor panic', r'TESSEL PANIC')]))
