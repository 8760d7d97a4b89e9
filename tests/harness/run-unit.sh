#!/usr/bin/env bash
# run-unit.sh BIN...: runs each cmocka unit-test binary and counts its results from cmocka's
# summary lines ("[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s), listed below:").
# A binary that crashes or prints no summary counts as one failure. Ends with
# "unit: N passed, N failed"; exit status 1 if anything failed.
set -euo pipefail
total_pass=0
total_fail=0
for bin in "$@"; do
	name=$(basename "$bin")
	out=$(mktemp)
	status=0
	"$bin" >"$out" 2>&1 || status=$?
	pass=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' "$out" | awk '{ s += $1 } END { print s + 0 }')
	fail=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' "$out" | awk '{ s += $1 } END { print s + 0 }')
	if [ "$pass" -eq 0 ] && [ "$fail" -eq 0 ]; then
		fail=1
		echo "unit/$name: not ok - no cmocka summary (exit status $status)"
		tail -n 20 "$out" | sed "s|^|unit/$name: |"
	elif [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail=1
		echo "unit/$name: not ok - exit status $status with no failed test reported"
	fi
	grep -E '^\[  (FAILED|ERROR)  \]|^\[ +OK +\]|^\[ +SKIPPED +\]' "$out" | grep -v 'test(s)' |
		sed "s|^|unit/$name: |" | grep -E 'FAILED|ERROR' || true
	echo "unit/$name: $pass passed, $fail failed"
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	rm -f "$out"
done
echo "unit: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
