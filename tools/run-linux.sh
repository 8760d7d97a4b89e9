#!/usr/bin/env bash
# run-linux.sh (make run-linux): boots Debian's Linux under Tessel in Bochs with the guest
# driver loaded and a busybox shell on the serial console, connected to this terminal.
# Try `tessel-conform demo` at the prompt; `exit` powers the guest off; Ctrl-] leaves.
# Environment: MODEL (corei7_icelake_u: hardware SPP; corei7_skylake_x: software mode),
# PORT (TCP port for Bochs' COM1, default a free one), TIMEOUT (3600 s).
# With stdin not a terminal, its lines are typed into the shell once the prompt is up:
#   printf 'tessel-conform demo\nexit\n' | make run-linux
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -f build/linux/initrd.img ] && [ -f build/tessel.efi ] || { echo "run-linux: make all linux first" >&2; exit 2; }
port=${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
echo "run-linux: Bochs ${MODEL:-corei7_icelake_u}, 2 CPUs, Linux under Tessel; booting takes about a minute" >&2
tools/linux/boot.sh linux-shell tessel shell --serial-port "$port" --timeout "${TIMEOUT:-3600}" >/dev/null &
runner=$!
trap 'kill "$runner" 2>/dev/null || true' INT TERM EXIT
sleep 1
python3 tools/serial-bridge.py "$port" build/run/linux-shell/serial.log || true
wait "$runner" 2>/dev/null || true
