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

# Path costs are measured with ONE CPU: Bochs advances the TSC by the mean of all CPUs'
# instruction counts, so with two CPUs a row would show half of one CPU's work plus whatever
# the other CPU did meanwhile. The cross-CPU costs (SPP_SET's shootdown, the single step's
# stop-the-world) are measured separately with two CPUs ("sw, 2 CPUs", labelled as such).
# The VMREAD/VMWRITE columns come from a second run of the same program under the test
# build (build/tessel-test.efi counts them, HC_TEST_VMCS_COUNT); its times are not used, as
# the counting itself costs instructions.
configs=(
	"hw-eager|corei7_icelake_u||1"
	"hw-lazy|corei7_icelake_u|sppt=lazy|1"
	"sw|corei7_skylake_x||1"
	"sw-2cpu|corei7_skylake_x||2"
)
[ -n "${BENCH_CONFIGS:-}" ] && { sel=(); for c in "${configs[@]}"; do [[ ",$BENCH_CONFIGS," == *",${c%%|*},"* ]] && sel+=("$c"); done; configs=("${sel[@]}"); }
declare -A table
[ "${BENCH_UEFI:-1}" = 1 ] || configs=() # BENCH_UEFI=0: only the Linux part
bench_run() { # NAME MODEL EXTRA CPUS BOOT -> the table on stdout
	local cfg run
	cfg=$(printf 'next=\\tests\\bench.efi\nlog=warn\n%s\n' "$3")
	run=build/run/bench-$1
	rm -rf "$run"
	CPUS=$4 BOOT=$5 MODEL=$2 tests/harness/bochs.sh "bench-$1" --cfg-text "$cfg" --until '^BENCH-END' --timeout 400 >/dev/null 2>&1 || true
	tr -d '\r' < "$run/serial.log" | sed -n '/^BENCH-BEGIN/,/^BENCH-END/p'
}
for c in "${configs[@]+"${configs[@]}"}"; do
	IFS='|' read -r name model extra cpus <<<"$c"
	out=$(bench_run "$name" "$model" "$extra" "$cpus" "${BENCH_HV:-$root/build/tessel.efi}")
	if [ -z "$out" ]; then
		echo "bench: $name produced no table (see build/run/bench-$name/serial.log)" >&2
		exit 1
	fi
	# The counts: the test build's VMREAD/VMWRITE columns replace the shipped build's "-".
	declare -A cnt=()
	if [ "$cpus" = 1 ] && [ -f build/tessel-test.efi ]; then
		cout=$(bench_run "$name-count" "$model" "$extra" 1 "${BENCH_HV_TEST:-$root/build/tessel-test.efi}")
		while IFS='|' read -r _ op _ _ _ _ _ rd wr _; do
			op=$(echo "$op" | sed 's/^ *//; s/ *$//')
			[ -n "$op" ] && cnt["$op"]="$(echo "$rd" | tr -d ' ')|$(echo "$wr" | tr -d ' ')"
		done < <(echo "$cout" | grep '^| ')
	fi
	echo "== $name ($model${extra:+, $extra}, $cpus CPU$([ "$cpus" = 1 ] || echo s)) =="
	echo "$out" | grep -v '^BENCH-' | while IFS= read -r line; do
		if [[ "$line" =~ ^\|\  ]] && [ "${#cnt[@]}" -gt 0 ]; then
			IFS='|' read -r _ op md mn mx fs nt _ _ _ <<<"$line"
			k=$(echo "$op" | sed 's/^ *//; s/ *$//')
			if [ -n "${cnt[$k]:-}" ]; then
				printf '|%s|%s|%s|%s|%s|%s| %6s | %6s |\n' "$op" "$md" "$mn" "$mx" "$fs" "$nt" "${cnt[$k]%%|*}" "${cnt[$k]##*|}"
				continue
			fi
		fi
		echo "$line"
	done
	unset cnt
	echo
	while IFS='|' read -r _ op med _ _ _ nat _; do
		op=$(echo "$op" | sed 's/^ *//; s/ *$//'); med=$(echo "$med" | tr -d ' ')
		[ -n "$op" ] && [[ "$med" =~ ^[0-9]+$ ]] && table["$name|$op"]=$med
	done < <(echo "$out" | grep '^| ')
done

if [ "${BENCH_UEFI:-1}" = 1 ]; then
echo "== side by side: median Bochs instructions (same guest program; 1 CPU except the last column) =="
printf '| %-32s | %9s | %9s | %9s | %9s |\n' "operation" "hw-eager" "hw-lazy" "sw" "sw 2 CPUs"
printf '|----------------------------------|-----------|-----------|-----------|-----------|\n'
for op in "HC_NOP round trip" "CPUID(0) round trip" "SPP_SET, 1 page" "SPP_SET, 512 pages, per page" \
	"SPP_GET, 512 pages" "denied write, ring (8 bytes)" "denied write, ring + vector" "straddling write (4 denied)" \
	"denied write, no ring" "allowed write, protected page" "allowed write across sub-pages" "FXSAVE to writable sub-pages" \
	"allowed write after SET (miss)"; do
	printf '| %-32s | %9s | %9s | %9s | %9s |\n' "$op" "${table[hw-eager|$op]:--}" "${table[hw-lazy|$op]:--}" "${table[sw|$op]:--}" "${table[sw-2cpu|$op]:--}"
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
[ -f build/linux/initrd.img ] || { echo "bench: make linux first" >&2; exit 2; }
declare -A lt
if [ "${BENCH_LINUX:-1}" = 1 ]; then
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
fi

# ---- the kernel guard (issue 13, tools/linux/README.md "The kernel guard"): one boot per mode
# with tessel_init=guardbench: reset to /init, then a kernel-heavy busybox loop (100 rounds of
# `seq 1 300 | sha256sum`: fork, exec, pipe) twice without the guard (the first warms up),
# loading tessel_guard.ko, and the same loop with the guard. Skip with BENCH_GUARD=0.
# BENCH_GUARD_GDT=1 adds one boot per mode with the guard's guard_gdt=1 (slow: every context
# switch is three refused writes).
[ "${BENCH_GUARD:-1}" = 1 ] || exit 0
declare -A gt
confs=("hw|corei7_icelake_u|" "sw|corei7_skylake_x|")
[ "${BENCH_GUARD_GDT:-0}" = 1 ] && confs+=("hw-gdt|corei7_icelake_u| tessel_guard.guard_gdt=1" "sw-gdt|corei7_skylake_x| tessel_guard.guard_gdt=1")
names=()
for c in "${confs[@]}"; do
	IFS='|' read -r name model opts <<<"$c"
	names+=("$name")
	CFG=log=warn tools/linux/boot.sh "bench-guard-$name" tessel "guardbench$opts" --model "$model" \
		--until '^GUEST-LINUX-DONE' --timeout 900 >/dev/null 2>&1 || true
	run=build/run/bench-guard-$name
	log=$(tr -d '\r' < "$run/serial.log")
	tsc=$(echo "$log" | sed -n 's/^GUEST-LINUX-TSC \([0-9]*\)$/\1/p' | head -n 1)
	[ -n "$tsc" ] || { echo "bench: Linux guard $name did not reach /init (see $run/serial.log)" >&2; exit 1; }
	gt["$name|reset to /init"]=$tsc
	while read -r _ op val; do gt["$name|$op"]=$val; done < <(echo "$log" | grep '^guardbench: [a-z0-9-]* [0-9]*$')
	[ -n "${gt[$name|loop-with]:-}" ] || { echo "bench: guard $name: no loop figures (see $run/serial.log)" >&2; exit 1; }
done
echo
echo "== Linux kernel guard: Bochs instructions (RDTSC), under Tessel =="
printf '| %-34s |' ""; for name in "${names[@]}"; do printf ' %16s |' "$name"; done; echo
printf '|------------------------------------|'; for name in "${names[@]}"; do printf '%s|' ------------------; done; echo
for op in "reset to /init" loop-without-1st loop-without guard-load loop-with; do
	printf '| %-34s |' "$op"; for name in "${names[@]}"; do printf ' %16s |' "${gt[$name|$op]:--}"; done; echo
done
echo "(hw: Ice Lake, hardware SPP; sw: Skylake-X, software mode; -gdt: with guard_gdt=1)"
for name in "${names[@]}"; do
	a=${gt[$name|loop-without]} b=${gt[$name|loop-with]}
	echo "$name: the loop with the guard takes $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%+.1f%%", (b - a) * 100 / a }') of its time without"
done
