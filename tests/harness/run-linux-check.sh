#!/usr/bin/env bash
# run-linux-check.sh: `make run-linux` as a user drives it, with stdin from a script instead
# of a terminal: the demo commands (tessel-conform demo, tessel-guard-demo) and exit are typed into the guest's shell once its prompt is
# up. Checks the output; prints "run-linux: ok - ..." lines and "run-linux: N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# tapcheck.py --lines: hypervisor log lines that land inside a guest console line are taken
# out of it (the two share the serial port; tapcheck.unsplice).
out=$(printf 'tessel-conform demo\ntessel-guard-demo\nexit\n' | TIMEOUT=400 timeout 600 tools/run-linux.sh 2>&1 |
	python3 tests/harness/tapcheck.py --lines)
pass=0 fail=0
point() { # point LABEL REGEX
	if grep -aEq -- "$2" <<<"$out"; then
		echo "run-linux: ok - $1"; pass=$((pass + 1))
	else
		echo "run-linux: not ok - $1 (no match for /$2/)"; fail=$((fail + 1))
	fi
}
point 'the driver is loaded before the shell starts' '^GUEST-DRIVER-LOADED mode=hardware'
point 'a shell prompt on the serial console' '^GUEST-SHELL: '
point 'demo: the write to a writable sub-page lands' '^demo: 8-byte write at \+0x100 .*: landed$'
point 'demo: the write to a protected sub-page leaves memory unchanged' '^demo: 8-byte write at \+0x900 .*: memory unchanged \(write denied\)$'
point 'demo: read() on /dev/tessel returns the DENIED event' '^demo: event from read\(/dev/tessel\): DENIED, gpa 0x[0-9a-f]*900, gla 0x[0-9a-f]*900, .* 8 bytes$'
point 'demo: the protection is removed again' '^demo: protection removed$'
point 'tessel-guard-demo: the guard loads and locks' '^tessel: guard: active: .* \(locked\), hardware sub-page protection'
for n in 1 2 3 4 5 6 7 8 12 13; do
	point "tessel-guard-demo: the test module's point $n passes" "^ok $n - "
done
# The GDT and kernel-text attacks: skipped with the guard's defaults (linux-guard-sw runs them).
point "tessel-guard-demo: point 9 (GDT) skipped, guard_gdt=0" '^ok 9 # skip call gate in the GDT refused: '
point "tessel-guard-demo: point 10 (kernel text) skipped, guard_text=0" '^ok 10 # skip kernel text patch refused: '
point "tessel-guard-demo: point 11 (GDT TLS slots) skipped, guard_gdt=0" "^ok 11 # skip call gate in the GDT's TLS slots refused: "
point 'tessel-guard-demo: the modprobe_path attack is named in the log' '^tessel: denied write to modprobe_path\+0x0 by [0-9a-f]{16} \(evil_modprobe\+0x[0-9a-f]+ \[tessel_evil\]\) on cpu [01], comm insmod$'
point 'tessel-guard-demo: the CR0.WP attack is named in the log' '^tessel: denied CR0 write clearing WP .*\(evil_cr0\+0x[0-9a-f]+ \[tessel_evil\]\) on cpu [01], comm insmod$'
point 'tessel-guard-demo: the counts' '^refusals counted by the guard: writes 7, registers 3, unchanged GDT TLS rewrites 0$'
point 'exit at the prompt powers the guest off' '^GUEST-LINUX-DONE'
if grep -aEq 'TESSEL PANIC|Oops|BUG:|Kernel panic' <<<"$out"; then
	echo "run-linux: not ok - no panic, oops or BUG"; fail=$((fail + 1))
else
	echo "run-linux: ok - no panic, oops or BUG"; pass=$((pass + 1))
fi
[ "$fail" = 0 ] || { echo "run-linux: output was:"; tail -n 40 <<<"$out" | sed 's/^/run-linux: | /'; }
echo "run-linux: $pass passed, $fail failed"
