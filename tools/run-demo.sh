#!/usr/bin/env bash
# run-demo.sh (make run): boots the hypervisor in Bochs with a demo guest chain-loaded after
# it and shows the serial log live until Bochs exits. The demo guest is build/tools/demo.efi
# once tools/demo.c exists, else build/guest/foundation.efi. Environment: MODEL (Bochs CPU
# model, default corei7_icelake_u; corei7_skylake_x has no SPP), CPUS (2), TIMEOUT (600 s),
# CFG (extra tessel.cfg lines, e.g. CFG='log=debug').
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
demo=build/tools/demo.efi
[ -f "$demo" ] || demo=build/guest/foundation.efi
[ -f build/tessel.efi ] && [ -f "$demo" ] || { echo "run-demo: build first (make all)" >&2; exit 2; }
cfg=$(printf 'next=\\demo.efi\n%s\n' "${CFG:-}")
echo "run-demo: Bochs ${MODEL:-corei7_icelake_u}, ${CPUS:-2} CPUs, demo $demo; serial log follows (Ctrl-C stops)"
rm -rf build/run/demo
tests/harness/bochs.sh demo --cfg-text "$cfg" --copy "$demo=demo.efi" --timeout "${TIMEOUT:-600}" &
runner=$!
run=build/run/demo
for _ in $(seq 50); do [ -f "$run/serial.log" ] && break; sleep 0.1; done
tail -n +1 -f "$run/serial.log" --pid "$runner" | tr -d '\r' &
tailer=$!
trap 'kill "$runner" "$tailer" 2>/dev/null || true' INT TERM
wait "$runner" || true
wait "$tailer" 2>/dev/null || true
