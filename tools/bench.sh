#!/usr/bin/env bash
# bench.sh (make bench): benchmarks, not tests. Boots build/guest/bench.efi under Tessel in
# Bochs in three configurations - hardware SPP with an eager SPPT (Ice Lake model), hardware
# SPP with a lazy SPPT, and the software path (Skylake-X model, no SPP) - and prints each
# run's table and a side-by-side comparison. Inside Bochs (`clock: sync=none`) RDTSC counts
# emulated instructions, so every figure is an exact, repeatable instruction count.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -f build/tessel.efi ] && [ -f build/guest/bench.efi ] || { echo "bench: build first (make all)" >&2; exit 2; }

configs=(
	"hw-eager|corei7_icelake_u|"
	"hw-lazy|corei7_icelake_u|sppt=lazy"
	"sw|corei7_skylake_x|"
)
declare -A table
for c in "${configs[@]}"; do
	IFS='|' read -r name model extra <<<"$c"
	cfg=$(printf 'next=\\tests\\bench.efi\nlog=warn\n%s\n' "$extra")
	run=build/run/bench-$name
	rm -rf "$run"
	MODEL=$model tests/harness/bochs.sh "bench-$name" --cfg-text "$cfg" --until '^BENCH-END' --timeout 400 >/dev/null 2>&1 || true
	out=$(tr -d '\r' < "$run/serial.log" | sed -n '/^BENCH-BEGIN/,/^BENCH-END/p')
	if [ -z "$out" ]; then
		echo "bench: $name produced no table (see $run/serial.log)" >&2
		exit 1
	fi
	echo "== $name ($model${extra:+, $extra}) =="
	echo "$out" | grep -v '^BENCH-'
	echo
	while IFS='|' read -r _ op med _; do
		op=$(echo "$op" | sed 's/^ *//; s/ *$//'); med=$(echo "$med" | tr -d ' ')
		[ -n "$op" ] && [[ "$med" =~ ^[0-9]+$ ]] && table["$name|$op"]=$med
	done < <(echo "$out" | grep '^| ')
done

echo "== side by side: median Bochs instructions (same guest program) =="
printf '| %-32s | %9s | %9s | %9s |\n' "operation" "hw-eager" "hw-lazy" "sw"
printf '|----------------------------------|-----------|-----------|-----------|\n'
for op in "HC_NOP round trip" "CPUID(0) round trip" "SPP_SET, 1 page" "SPP_SET, 512 pages, per page" \
	"SPP_GET, 512 pages" "denied write (8 bytes)" "allowed write, protected page" "FXSAVE to writable sub-pages" \
	"allowed write after SET (miss)"; do
	printf '| %-32s | %9s | %9s | %9s |\n' "$op" "${table[hw-eager|$op]:--}" "${table[hw-lazy|$op]:--}" "${table[sw|$op]:--}"
done
