"""groups_iommu.py: DMA protection with VT-d (docs/IOMMU.md).

QEMU (TCG, no VMX) has an emulated VT-d unit (-device intel-iommu) and the edu PCI device,
whose DMA engine the test program drives; the test build's loader has the core program the
IOMMU without a hypervisor (iommu=on, include/tessel/iommu_test.h). Bochs has no IOMMU:
iommu=auto says so in one line and the hypervisor runs as before; iommu=on refuses.
"""
import os

IOMMU_P = {
    'started': r'tessel: hypervisor started on [0-9]+ CPUs',
    'chain': r'tessel: chain-loading ',
    'hello_ran': r'^ok 1 - next stage ran',
    'auto_absent': r'iommu: no DMAR table \(no VT-d\): DMA is not remapped',
    'on_refused': r'iommu=on: no DMAR table \(no VT-d\): refusing to start',
    'loader_refused': r'tessel: hypervisor core failed to initialise: iommu=on and DMA remapping cannot be set up',
    'remap_on': r'iommu: DMA remapping on 1 unit \(on, [34]-level tables',
    'novmx_on': r'tessel: DMA remapping on without a hypervisor \(test build, no VMX\)',
    'release_novmx': r'tessel: iommu=on: the IOMMU is only owned by a running hypervisor \(no VMX\)',
    'fault_line': r'iommu: DMA write fault: source 00:05\.0 address [0-9a-f]+ reason [0-9]+ \(protected sub-page\)',
    'region_fault': r'iommu: DMA write fault: source 00:05\.0 address [0-9a-f]+ reason [0-9]+ \(hypervisor region\)',
    'read_fault': r'iommu: DMA read fault: source 00:05\.0 address [0-9a-f]+ reason [0-9]+ \(hypervisor region\)',
}
_P = IOMMU_P
_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
_DMA = os.path.join(_ROOT, 'build', 'iommu')


def _disk_md5():
    try:
        with open(os.path.join(_DMA, 'disk.md5')) as f:
            return f.read().strip()
    except OSError:
        return 'build/iommu/disk.md5 missing: run tests/iommu/mkinitrd-dma.sh build/iommu'

_EDU = '-device intel-iommu -device edu,addr=05.0'
_SHUTDOWN = '@echo -off\r\nreset -s\r\n'

IOMMU_GROUPS = [
    # The edu device's DMA against the IOMMU the core programmed (3-level tables: QEMU 7.2's
    # default 39-bit address width).
    dict(name='iommu-edu', emu='qemu', cpus=1, boot='build/tessel-test.efi', qemu_args=_EDU,
         cfg='next=\\tests\\dma_edu.efi\r\niommu=on\r\n', tap=True, timeout=180,
         expect=[('VT-d programmed without VMX', _P['novmx_on']),
                 ('the core reports remapping on', _P['remap_on']),
                 ('protected-page DMA fault logged with edu\'s source ID', _P['fault_line']),
                 ('region DMA write fault logged', _P['region_fault']),
                 ('region DMA read fault logged', _P['read_fault'])],
         reject=[('hypervisor not started', _P['started'])]),
    # The same with 4-level tables (48-bit address width).
    dict(name='iommu-edu-aw48', emu='qemu', cpus=1, boot='build/tessel-test.efi',
         qemu_args='-device intel-iommu,aw-bits=48 -device edu,addr=05.0',
         cfg='next=\\tests\\dma_edu.efi\r\niommu=on\r\n', tap=True, timeout=180,
         expect=[('VT-d programmed without VMX', _P['novmx_on']),
                 ('4-level tables', r'iommu: DMA remapping on 1 unit \(on, 4-level tables')]),
    # The shipped build never owns the IOMMU without a hypervisor: it says so and goes on.
    dict(name='iommu-qemu-release', emu='qemu', cpus=1, qemu_args=_EDU,
         cfg='next=\\tests\\hello.efi\r\niommu=on\r\n', tap=True, timeout=120,
         expect=[('release build: one line, no remapping', _P['release_novmx']),
                 ('next stage ran', _P['hello_ran'])],
         reject=[('no remapping', _P['novmx_on'])]),
    # Bochs has no IOMMU: auto says so in one line and everything else is as before.
    dict(name='iommu-bochs-auto', emu='bochs', cpus=2, cfg='next=\\tests\\hello.efi\r\n',
         tap=True, timeout=180,
         expect=[('one line: no VT-d', _P['auto_absent']),
                 ('hypervisor started', _P['started']),
                 ('next stage ran', _P['hello_ran'])]),
    # ... and on refuses to start the hypervisor, with the reason.
    dict(name='iommu-bochs-on', emu='bochs', cpus=2,
         cfg='next=\\tests\\hello.efi\r\niommu=on\r\nno_vmx=stop\r\n',
         startup=_SHUTDOWN, timeout=180, until=r'no_vmx=stop', grace=10,
         expect=[('the core says why', _P['on_refused']),
                 ('the loader says the hypervisor did not start', _P['loader_refused'])],
         reject=[('hypervisor not started', _P['started']),
                 ('next stage not run', _P['hello_ran'])]),
    # Linux with Tessel's IOMMU setup active (test build, no VMX; started from the shell, the
    # loader returns and the kernel follows): it finds no DMAR, and its virtio disk, whose
    # blocks move by DMA through the IOMMU, reads back the image's checksum and a written MiB.
    dict(name='iommu-linux-qemu', emu='qemu', cpus=2, mem=512, boot=None, cfg=None,
         copy=[('build/tessel-test.efi', 'tessel.efi'), ('build/iommu/vmlinuz.efi', 'vmlinuz.efi'),
               ('build/iommu/initrd-dma.img', 'initrd-dma.img')],
         qemu_args='-device intel-iommu -drive file=%s,if=virtio,format=raw,snapshot=on'
                   % os.path.join(_DMA, 'disk.img'),
         startup='@echo -off\r\nfs0:\r\n\\tessel.efi iommu=on\r\n'
                 '\\vmlinuz.efi initrd=\\initrd-dma.img console=ttyS0,115200\r\n',
         timeout=300, until=r'reboot: Power down', grace=2,
         expect=[('VT-d programmed without VMX', _P['novmx_on']),
                 ('Linux reached /init', r'^GUEST-DMA-UP cpus=2'),
                 ('the whole disk read by DMA matches the image', r'^GUEST-DMA-READ md5=' + _disk_md5() + '$'),
                 ('a MiB written by DMA reads back the same', r'^GUEST-DMA-WRITE ok md5=[0-9a-f]{32}$'),
                 ('/init finished', r'^GUEST-DMA-DONE'),
                 ('the guest powers off cleanly', r'reboot: Power down')],
         reject=[('Linux finds no DMAR table', r'DMAR:'),
                 ('no guest-side failure', r'GUEST-DMA-FAIL'),
                 ('no kernel oops or BUG', r'(Oops|BUG:|Kernel panic|general protection fault)'),
                 ('no I/O error', r'I/O error')]),
]
