"""groups_tools.py: system-test groups for the UEFI tools in tools/ (same dict format as
groups.py, whose GROUPS list imports TOOLS_GROUPS).

'tesselctl' boots the UEFI shell (no BOOTX64.EFI) and runs a startup.nsh that:
  1. runs `tesselctl info` before the hypervisor is loaded: the not-running message, a
     nonzero status, and no VMCALL (it would #UD and kill the shell);
  2. starts \\tessel.efi from the shell, then `help`, `info`, `stats` and `selftest` (which
     allocates its own pages and prints TAP: the stream this group checks);
  3. drives get / set / protect / lock from the command line on pages at 64 MiB: inside the
     large free range OVMF leaves between 21 MiB and the hypervisor region under Bochs with
     256 MiB (found with `memmap`; UEFI allocates top-down, so nothing lands there while the
     script runs). Everything it protects it unprotects again; the page it locks is
     unprotected, so the lock is harmless for the rest of the boot;
  4. checks hypercall failures (a locked page, an MMIO page) and bad arguments, each with
     its one-line message, and the shell's %lasterror% after them.
Each "echo tc-status-NAME %lasterror%" line shows tesselctl's EFI status (the shell prints
the low bits: 0x2 EFI_INVALID_PARAMETER, 0x3 EFI_UNSUPPORTED, 0xF EFI_ACCESS_DENIED).
"""

CTL = '\\tests\\tesselctl.efi'
PAGE = '0x4000000'  # 64 MiB: see above
NUM = '(?:hex with 0x, or decimal)'


def _nsh(lines):
    return '\r\n'.join(lines) + '\r\n'


_STARTUP = _nsh([
    '@echo -off',
    'fs0:',
    f'{CTL} info',
    'echo tc-status-norun %lasterror%',
    '\\tessel.efi',
    f'{CTL} help',
    'echo tc-status-help %lasterror%',
    f'{CTL} info',
    'echo tc-status-info %lasterror%',
    f'{CTL} stats',
    f'{CTL} selftest',
    'echo tc-status-selftest %lasterror%',
    # the command line on pages 0x4000000-0x4003fff
    f'{CTL} get 0x4000123 2',
    f'{CTL} set {PAGE} 2 0x0000ffff',
    f'{CTL} protect 0x4000f80 0x101',
    f'{CTL} get {PAGE} 2',
    f'{CTL} set {PAGE} 2 all',
    f'{CTL} get {PAGE} 2',
    f'{CTL} set 0x4002000 1 none track',
    f'{CTL} set 0x4002000 1 all',
    f'{CTL} lock 0x4003000',
    'echo tc-status-lock %lasterror%',
    f'{CTL} set 0x4003000 1 none',
    'echo tc-status-locked %lasterror%',
    f'{CTL} set 0xfee00000 1 none',
    'echo tc-status-mmio %lasterror%',
    # bad arguments: one line each, then the usage, status EFI_INVALID_PARAMETER
    f'{CTL} set 0x1000 0 0',
    'echo tc-status-badargs %lasterror%',
    f'{CTL} get 0x12zz',
    f'{CTL} frob',
    f'{CTL} set 0x1000 1 0x100000000',
    f'{CTL} set 0x1000 1 0 trak',
    f'{CTL} get',
    f'{CTL} get 0 1 extra',
    f'{CTL} protect 0x1000 0',
    f'{CTL} get 99999999999999999999',
    f'{CTL} lock 0 513',
    'echo tesselctl-done',
    'reset -s',
])

TOOLS_GROUPS = [
    dict(name='tesselctl', emu='bochs', model='corei7_icelake_u', cpus=2, boot=None,
         copy=[('build/tessel.efi', 'tessel.efi'),
               ('build/tools/tesselctl.efi', 'tests/tesselctl.efi')],
         startup=_STARTUP,
         tap=True, timeout=300, until=r'^tesselctl-done', grace=5,
         expect=[
             # before the hypervisor
             ('without Tessel: not-running message',
              r'^tesselctl: Tessel is not running \(no TesselHV signature in CPUID 0x40000000\)$'),
             ('without Tessel: nonzero status', r'^tc-status-norun 0x0*[1-9a-fA-F][0-9a-fA-F]*$'),
             ('hypervisor started from the shell', r'tessel: hypervisor started on [0-9]+ CPUs'),
             # help, info, stats
             ('help: usage text', r'^usage: tesselctl <command> \[arguments\]'),
             ('help: status 0', r'^tc-status-help 0x0$'),
             ('info: running', r'^Tessel: running \(CPUID 0x40000000: TesselHV'),
             ('info: ABI version 1.4', r'^ABI version: 1\.4 \(0x00010004\)$'),
             ('info: feature names', r'^features: 0x[0-9a-f]{8} (SPP_HW|SPP_SW)( LOCK)?( EVENTS)?( TRACK)?( DMA)? PIN( PIN_DT)? SPP_BYTES$'),
             ('info: max pages per call', r'^max pages per call: [0-9]+$'),
             ('info: status 0', r'^tc-status-info 0x0$'),
             ('stats: header', r'^HC_STATS: [0-9]+ counters \(record of [0-9]+ bytes; ABI 1\.3 defines 13\)$'),
             *[(f'stats: counter {n}', rf'^  {n} +[0-9]+$') for n in (
                 'exits', 'hypercalls', 'spp_denied', 'spp_tracked', 'spp_misses', 'spp_misconfigs',
                 'ept_violations', 'emulated_writes', 'pages_protected', 'sppt_pages', 'events_dropped',
                 'dma_faults', 'pin_denied')],
             ('selftest: status 0', r'^tc-status-selftest 0x0$'),
             # get / set / protect / lock on the command line
             ('get: header', r'^page +map +sub-pages 0-31'),
             ('get: unprotected page line',
              r'^0x0000000004001000  0xffffffff  \.{32}$'),
             ('set: status by name',
              r'^set 0x4000000 2 page\(s\) map 0x0000ffff \.{16}P{16}: 0 \(OK\)$'),
             ('protect: summary', r'^protect 0x4000f80-0x4001080 \(257 bytes, 2 page\(s\)\): OK$'),
             ('protect: page 0 keeps its map', r'^0x0000000004000000  0x0000ffff  \.{16}P{16}$'),
             ('protect: page 1 merges sub-pages 0-1', r'^0x0000000004001000  0x0000fffc  PP\.{14}P{16}$'),
             ('set all: unprotected again', r'^set 0x4000000 2 page\(s\) map 0xffffffff \.{32}: 0 \(OK\)$'),
             ('set track', r'^set 0x4002000 1 page\(s\) map 0x00000000 P{32} track: 0 \(OK\)$'),
             ('lock', r'^lock 0x4003000 1 page\(s\): 0 \(OK\)$'),
             ('lock: status 0', r'^tc-status-lock 0x0$'),
             ('set on a locked page: -EPERM named',
              r'^tesselctl: set: HC_SPP_SET failed: -EPERM \(a page is locked\)$'),
             ('set on a locked page: nonzero status', r'^tc-status-locked 0x0*[1-9a-fA-F][0-9a-fA-F]*$'),
             ('set on MMIO: -EINVAL named',
              r'^tesselctl: set: HC_SPP_SET failed: -EINVAL \(a page is not guest RAM'),
             ('set on MMIO: nonzero status', r'^tc-status-mmio 0x0*[1-9a-fA-F][0-9a-fA-F]*$'),
             # bad arguments
             ('bad page count', r"^tesselctl: set: <pages>: '0' is not a page count \(1-[0-9]+\)$"),
             ('bad arguments: nonzero status', r'^tc-status-badargs 0x0*[1-9a-fA-F][0-9a-fA-F]*$'),
             ('trailing junk in an address', rf"^tesselctl: get: <gpa>: '0x12zz' is not an address \({NUM}\)$"),
             ('unknown command', r"^tesselctl: unknown command 'frob' \(try 'tesselctl help'\)$"),
             ('map wider than 32 bits',
              r"^tesselctl: set: <map>: '0x100000000' is not a map \(hex up to 0xffffffff, 'all' or 'none'\)$"),
             ('not the word track', r"^tesselctl: set: \[track\]: 'trak' is not 'track'$"),
             ('missing argument', r'^tesselctl: get: missing argument <gpa>$'),
             ('extra argument', r"^tesselctl: get: unexpected argument 'extra'$"),
             ('zero length', r"^tesselctl: protect: <len>: '0' is not a length \(1 or more bytes\)$"),
             ('64-bit overflow', r"^tesselctl: get: <gpa>: '99999999999999999999' is too large \(more than 64 bits\)$"),
             ('page count above the maximum', r"^tesselctl: lock: \[pages\]: '513' is not a page count \(1-[0-9]+\)$"),
             ('shell still runs commands afterwards', r'^tesselctl-done$'),
         ],
         reject=[
             ('no query/get/stats failure', r'HC_(QUERY|SPP_GET|STATS) failed'),
             ('no shootdown stall', r'shootdown: still waiting'),
             ('no exception in the shell', r'X64 Exception Type'),
         ]),
]
