#!/usr/bin/env bash
# run-all.sh: every test of the project, in series (the machines have 2 shared cores, so one
# emulator at a time): the cmocka unit tests (build/unit/test_*), then the system-test groups
# of tests/harness/groups.py (Bochs and QEMU boots, checked by systest.py). Prints a summary
# per group and ends with exactly one line "N passed, N failed", counting individual test
# points (cmocka tests, TAP points, pattern checks). Exit status 1 on any failure.
#
# Filtering: TESTS=foundation,badcfg make test   runs only those system groups (the name
# "unit" selects the unit tests, "fuzz" the short fuzzer runs and "run-linux" the scripted
# `make run-linux`; without them in TESTS they are skipped). MODEL=... sets the
# Bochs CPU model for groups that do not fix one (e.g. MODEL=corei7_skylake_x: no SPP).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

want() { # want NAME: is NAME selected by TESTS?
	[ -z "${TESTS:-}" ] && return 0
	case ",$TESTS," in *",$1,"*) return 0 ;; esac
	return 1
}

pass=0
fail=0
add() { # add "LINE ending in: N passed, N failed"
	local p f
	p=$(sed -n 's/.*: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\1/p' <<<"$1")
	f=$(sed -n 's/.*: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\2/p' <<<"$1")
	if [ -z "$p" ]; then
		fail=$((fail + 1))
	else
		pass=$((pass + p))
		fail=$((fail + f))
	fi
}

t0=$(date +%s)
if want unit; then
	shopt -s nullglob
	bins=()
	for b in build/unit/test_*; do
		[ -x "$b" ] && [ -f "$b" ] && [[ "$b" != *.d ]] && bins+=("$b")
	done
	if [ ${#bins[@]} -gt 0 ]; then
		out=$("$here/run-unit.sh" "${bins[@]}" 2>&1) || true
		printf '%s\n' "$out"
		add "$(grep '^unit: ' <<<"$out" | tail -n 1)"
	else
		echo "unit: no unit-test binaries in build/unit (run make first)"
	fi
	out=$(python3 "$here/test_harness.py" 2>&1) || true
	printf '%s\n' "$out"
	add "$(grep '^harness: [0-9]* passed' <<<"$out" | tail -n 1)"
fi

# The fuzzers, short and deterministic (the long runs are `make fuzz` and `make fuzz-exit`):
# one test point each. TESTS=fuzz selects both.
fuzz_point() { # fuzz_point TARGET NAME
	out=$(make -s -C "$root" "$1" 2>&1) && ok=1 || ok=0
	printf '%s\n' "$out" | tail -n 3
	if [ "$ok" = 1 ] && grep -q "^$2: [0-9]* runs, 0 crashes" <<<"$out"; then
		echo "$2: 1 passed, 0 failed"
		pass=$((pass + 1))
	else
		echo "$2: 0 passed, 1 failed"
		fail=$((fail + 1))
	fi
}
if want fuzz; then
	fuzz_point fuzz-short fuzz
	fuzz_point fuzz-exit-short fuzz-exit
fi

groups=()
if [ -n "${TESTS:-}" ]; then
	IFS=, read -r -a names <<<"$TESTS"
	for n in "${names[@]}"; do
		[ -n "$n" ] && [ "$n" != unit ] && [ "$n" != fuzz ] && [ "$n" != run-linux ] && groups+=("$n")
	done
fi
if [ -z "${TESTS:-}" ] || [ ${#groups[@]} -gt 0 ]; then
	log=$(mktemp)
	TESTS= python3 "$here/systest.py" "${groups[@]+"${groups[@]}"}" 2>&1 | tee "$log" || true
	add "$(grep '^system: ' "$log" | tail -n 1)"
	rm -f "$log"
fi
# `make run-linux` driven by a script (tests/harness/run-linux-check.sh).
if want run-linux; then
	out=$("$here/run-linux-check.sh" 2>&1) || true
	printf '%s\n' "$out"
	add "$(grep '^run-linux: [0-9]* passed' <<<"$out" | tail -n 1)"
fi
echo "(total wall time $(( $(date +%s) - t0 )) s)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
