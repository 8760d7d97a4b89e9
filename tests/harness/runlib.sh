# runlib.sh: shared by bochs.sh and qemu.sh (sourced, not run). Owns the per-run directory
# (build/run/NAME/: a fresh ESP folder, the emulator's files, serial.log, status), the option
# parsing common to both runners, and the watch loop that enforces the timeout and can end a
# run early once a pattern has appeared on the serial port.
#
# Options (environment variables of the same name in capitals give defaults):
#   --boot FILE      \EFI\BOOT\BOOTX64.EFI (default build/tessel.efi; "none" for no boot file)
#   --cfg FILE       \EFI\BOOT\tessel.cfg      --cfg-text TEXT   (same, literal contents)
#   --copy SRC=DST   any other file onto the ESP (DST relative, / separators)
#   --startup FILE   \startup.nsh              --startup-text TEXT
#   --no-tests       do not copy build/guest/*.efi to \tests\
#   --disk IMG       boot a copy of the raw disk image IMG (make image) instead of an ESP
#                    folder; the ESP options above are then ignored
#   --cpus N (CPUS, 2)  --mem MIB (MEM, 256)  --model M (MODEL, corei7_icelake_u; Bochs only)
#   --timeout S (TIMEOUT, 120)  --until REGEX  --grace S (GRACE, 3)
#   --serial-port P  (Bochs only) COM1 is a TCP server on 127.0.0.1:P instead of the file
#                    serial.log; Bochs waits for a client (tools/serial-bridge.py) to connect
# --until ends the run GRACE seconds after REGEX (grep -E) first matches serial.log.
# Results: RUN/serial.log and RUN/status (ended=poweroff|pattern|timeout|interrupted, wall=S).
# "poweroff" means the emulator exited by itself (guest power-off, or an emulator error).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

run_parse() {
	NAME=${1:?usage: $0 NAME [options]}
	shift
	BOOT=${BOOT:-$ROOT/build/tessel.efi}
	CPUS=${CPUS:-2}
	MEM=${MEM:-256}
	MSRS=${MSRS:-}
	SERIAL_PORT=""
	MODEL=${MODEL:-corei7_icelake_u}
	TIMEOUT=${TIMEOUT:-120}
	GRACE=${GRACE:-3}
	UNTIL=""
	TESTS_DIR=1
	DISK=""
	CFG_FILE="" CFG_TEXT="" CFG_SET=0 STARTUP_FILE="" STARTUP_TEXT="" STARTUP_SET=0
	COPIES=()
	while [ $# -gt 0 ]; do
		case $1 in
		--boot) BOOT=$2; shift ;;
		--cfg) CFG_FILE=$2; CFG_SET=1; shift ;;
		--cfg-text) CFG_TEXT=$2; CFG_SET=2; shift ;;
		--copy) COPIES+=("$2"); shift ;;
		--startup) STARTUP_FILE=$2; STARTUP_SET=1; shift ;;
		--startup-text) STARTUP_TEXT=$2; STARTUP_SET=2; shift ;;
		--no-tests) TESTS_DIR=0 ;;
		--disk) DISK=$2; shift ;;
		--cpus) CPUS=$2; shift ;;
		--mem) MEM=$2; shift ;;
		--msrs) MSRS=$2; shift ;;
		--serial-port) SERIAL_PORT=$2; shift ;;
		--model) MODEL=$2; shift ;;
		--timeout) TIMEOUT=$2; shift ;;
		--until) UNTIL=$2; shift ;;
		--grace) GRACE=$2; shift ;;
		*) echo "$0: unknown option $1" >&2; exit 2 ;;
		esac
		shift
	done
	RUN=$ROOT/build/run/$NAME
	# Bochs runs in RUN: the MSR file must be found from there.
	if [ -n "$MSRS" ]; then
		[ -f "$MSRS" ] || { echo "$0: MSR file $MSRS missing" >&2; exit 2; }
		MSRS=$(cd "$(dirname "$MSRS")" && pwd)/$(basename "$MSRS")
	fi
}

run_mkesp() {
	rm -rf "$RUN"
	if [ -n "$DISK" ]; then
		[ -f "$DISK" ] || { echo "$0: disk image $DISK missing (make image)" >&2; exit 2; }
		mkdir -p "$RUN"
		cp "$DISK" "$RUN/disk.img"
		return
	fi
	mkdir -p "$RUN/esp/EFI/BOOT"
	local esp=$RUN/esp
	if [ "$BOOT" != none ]; then
		[ -f "$BOOT" ] || { echo "$0: boot file $BOOT missing (make first)" >&2; exit 2; }
		cp "$BOOT" "$esp/EFI/BOOT/BOOTX64.EFI"
	fi
	case $CFG_SET in
	1) cp "$CFG_FILE" "$esp/EFI/BOOT/tessel.cfg" ;;
	2) printf '%s\n' "$CFG_TEXT" > "$esp/EFI/BOOT/tessel.cfg" ;;
	esac
	case $STARTUP_SET in
	1) cp "$STARTUP_FILE" "$esp/startup.nsh" ;;
	2) printf '%s\r\n' "$STARTUP_TEXT" > "$esp/startup.nsh" ;;
	esac
	if [ "$TESTS_DIR" = 1 ] && compgen -G "$ROOT/build/guest/*.efi" >/dev/null; then
		mkdir -p "$esp/tests"
		cp "$ROOT"/build/guest/*.efi "$esp/tests/"
	fi
	local c
	for c in "${COPIES[@]+"${COPIES[@]}"}"; do
		mkdir -p "$(dirname "$esp/${c#*=}")"
		cp "${c%%=*}" "$esp/${c#*=}"
	done
	: > "$RUN/serial.log"
}

# run_watch PID: waits for the emulator, enforcing TIMEOUT and UNTIL; writes RUN/status.
run_watch() {
	local pid=$1 t0 now seen=0
	ended=poweroff
	trap 'ended=interrupted; kill -TERM "$pid" 2>/dev/null || true' INT TERM
	t0=$(date +%s.%N)
	while kill -0 "$pid" 2>/dev/null; do
		now=$(date +%s.%N)
		if [ -n "$UNTIL" ] && [ "$seen" = 0 ] && tr -d '\r' < "$RUN/serial.log" | grep -aEq -- "$UNTIL"; then
			seen=$now
		fi
		if [ "$seen" != 0 ] && awk -v a="$now" -v b="$seen" -v g="$GRACE" 'BEGIN { exit !(a - b >= g) }'; then
			ended=pattern
			break
		fi
		if awk -v a="$now" -v b="$t0" -v t="$TIMEOUT" 'BEGIN { exit !(a - b >= t) }'; then
			ended=timeout
			break
		fi
		sleep 0.5
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	now=$(date +%s.%N)
	printf 'ended=%s\nwall=%s\n' "$ended" "$(awk -v a="$now" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')" > "$RUN/status"
	echo "$NAME: ended=$ended wall=$(sed -n 's/^wall=//p' "$RUN/status")s serial=$RUN/serial.log"
}
