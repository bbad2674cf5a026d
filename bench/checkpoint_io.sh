#!/usr/bin/env bash
# Checkpoint write and read throughput for the full training state of a model (default: the
# 390M FloatLM on this machine's CPU), beside the raw disk throughput of `dd` writing and reading
# the same byte count in the same directory.
#   bench/checkpoint_io.sh [RECIPE] [DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
recipe=${1:-$root/recipes/floatlm/390m.yaml}
dir=${2:-$(mktemp -d -p "${TMPDIR:-/tmp}" spectra-ckpt-XXXX)}
spectra=${SPECTRA_BIN:-$root/build/spectra}
out=$("$spectra" bench "$recipe" --set train.device=cpu --set train.precision=f32 --checkpoint-io "$dir" --json)
echo "$out" | grep -v '^json:'
json=$(echo "$out" | grep '^json:' | sed 's/^json: //')
bytes=$(echo "$json" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["bytes"]))')
ws=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["write_s"])')
rs=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["read_s"])')
mb=$(( (bytes + 1048575) / 1048576 ))
t0=$(date +%s.%N); dd if=/dev/zero of="$dir/dd.bin" bs=1M count=$mb conv=fsync status=none; t1=$(date +%s.%N)
dd if="$dir/dd.bin" of=/dev/null bs=1M status=none; t2=$(date +%s.%N)
python3 - "$bytes" "$ws" "$rs" "$t0" "$t1" "$t2" <<'PY'
import sys
b, ws, rs, t0, t1, t2 = map(float, sys.argv[1:])
dw, dr = t1 - t0, t2 - t1
print(f"{'':22}{'write GB/s':>12}{'read GB/s':>12}")
print(f"{'spectra checkpoint':22}{b/1e9/ws:>12.2f}{b/1e9/rs:>12.2f}")
print(f"{'dd (same bytes)':22}{b/1e9/dw:>12.2f}{b/1e9/dr:>12.2f}")
print(f"{'ratio':22}{dw/ws:>12.2f}{dr/rs:>12.2f}")
print(f"({b/1e9:.2f} GB; the checkpoint times include its CRC32 verification pass; reads of both may come from the page cache)")
PY
rm -rf "$dir"
