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
[ "${BENCH_UEFI:-1}" = 1 ] || configs=() # BENCH_UEFI=0: only the Linux part
for c in "${configs[@]+"${configs[@]}"}"; do
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

if [ "${BENCH_UEFI:-1}" = 1 ]; then
echo "== side by side: median Bochs instructions (same guest program) =="
printf '| %-32s | %9s | %9s | %9s |\n' "operation" "hw-eager" "hw-lazy" "sw"
printf '|----------------------------------|-----------|-----------|-----------|\n'
for op in "HC_NOP round trip" "CPUID(0) round trip" "SPP_SET, 1 page" "SPP_SET, 512 pages, per page" \
	"SPP_GET, 512 pages" "denied write (8 bytes)" "allowed write, protected page" "FXSAVE to writable sub-pages" \
	"allowed write after SET (miss)"; do
	printf '| %-32s | %9s | %9s | %9s |\n' "$op" "${table[hw-eager|$op]:--}" "${table[hw-lazy|$op]:--}" "${table[sw|$op]:--}"
done
fi

# ---- Permission tables (the performance issue, SET/GET half): the test build (its
# HC_TEST_TABLE_MEM hook reads free heap pages) with 2 GiB of RAM (Bochs 2.7's maximum) and a
# large heap, in each mode: the first SET in a fresh 2 MiB block, hypervisor memory per
# protected page (dense, scattered), and SET/GET per page and a denied write while 0 ..
# 1,000,000 other pages are protected (as far as the guest's RAM goes). BENCH_PT=0 skips it.
if [ "${BENCH_UEFI:-1}" = 1 ] && [ "${BENCH_PT:-1}" = 1 ]; then
	[ -f build/tessel-test.efi ] || { echo "bench: build first (make all)" >&2; exit 2; }
	for c in "hw-eager|corei7_icelake_u|" "hw-lazy|corei7_icelake_u|sppt=lazy" "sw|corei7_skylake_x|"; do
		IFS='|' read -r name model extra <<<"$c"
		cfg=$(printf 'next=\\tests\\bench.efi\nlog=warn\nheap=%s\n%s\n' "${BENCH_PT_HEAP:-128}" "$extra")
		run=build/run/bench-pt-$name
		rm -rf "$run"
		MODEL=$model tests/harness/bochs.sh "bench-pt-$name" --boot build/tessel-test.efi --mem 2048 \
			--cfg-text "$cfg" --until '^BENCH-END' --timeout 600 >/dev/null 2>&1 || true
		out=$(tr -d '\r' < "$run/serial.log" | sed -n '/^PT-BEGIN/,/^PT-END/p' | grep -v '^PT-' | sed 's/^PT //')
		[ -n "$out" ] || { echo "bench: pt-$name produced no table (see $run/serial.log)" >&2; exit 1; }
		echo "== permission tables, $name ($model${extra:+, $extra}, test build, heap=${BENCH_PT_HEAP:-128}, 2 GiB) =="
		echo "$out"
		echo
	done
fi

# ---- Linux (issue 5): the same kernel and initramfs as the linux-* test groups, booted with
# tessel_init=bench: instructions from reset to /init without Tessel and under it, and the
# guest driver's costs measured from user space by tessel-conform bench (RDTSC around each
# operation, median of 101, on CPU 0). Skip with BENCH_LINUX=0; BENCH_UEFI=0 runs only this part.
[ "${BENCH_LINUX:-1}" = 1 ] || exit 0
[ -f build/linux/initrd.img ] || { echo "bench: make linux first" >&2; exit 2; }
declare -A lt
for c in "native-icl|corei7_icelake_u|native" "hw|corei7_icelake_u|tessel" "native-skx|corei7_skylake_x|native" "sw|corei7_skylake_x|tessel"; do
	IFS='|' read -r name model how <<<"$c"
	CFG=log=warn tools/linux/boot.sh "bench-linux-$name" "$how" bench --model "$model" \
		--until '^GUEST-LINUX-DONE' --timeout 400 >/dev/null 2>&1 || true
	run=build/run/bench-linux-$name
	log=$(tr -d '\r' < "$run/serial.log")
	tsc=$(echo "$log" | sed -n 's/^GUEST-LINUX-TSC \([0-9]*\)$/\1/p' | head -n 1)
	[ -n "$tsc" ] || { echo "bench: Linux $name did not reach /init (see $run/serial.log)" >&2; exit 1; }
	lt["$name|reset to /init"]=$tsc
	while read -r _ op val; do lt["$name|$op"]=$val; done < <(echo "$log" | grep '^bench: [a-z0-9-]* [0-9]*$')
done
echo
echo "== Linux guest: Bochs instructions (RDTSC); native = the same CPU model without Tessel =="
printf '| %-16s | %14s | %14s | %14s | %14s |\n' "operation" "Ice Lake native" "Ice Lake hw" "Skylake native" "Skylake sw"
printf '|------------------|----------------|----------------|----------------|----------------|\n'
for op in "reset to /init" ioctl-nop ioctl-get-1 denied-write allowed-write plain-write; do
	printf '| %-16s | %14s | %14s | %14s | %14s |\n' "$op" "${lt[native-icl|$op]:--}" "${lt[hw|$op]:--}" \
		"${lt[native-skx|$op]:--}" "${lt[sw|$op]:--}"
done
echo "(ioctl-*: user space to hypervisor and back; denied-write: the store, exit, emulation, event,"
echo " the ring's interrupt and its handler; allowed-write: a writable sub-page of a protected page)"
