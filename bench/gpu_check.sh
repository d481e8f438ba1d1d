#!/usr/bin/env bash
# Usage:
#   bench/gpu_check.sh --fetch_wheels     # here, with network: ESPnet and its imports as wheels in .whl/
#   bench/gpu_check.sh                    # on a one-GPU machine (torch 2.11 + torchaudio 2.11, no ESPnet,
#                                         # no network), .whl/ carried with the checkout: < 8 min
#   bench/gpu_check.sh --device cpu --dry_run   # the same steps at toy sizes, on the CPU
#
# Installs the wheels of bench/gpu_wheels.txt (--no-deps --no-index, into /tmp/gpu_check_site) unless
# ESPnet imports already, puts the checkout on PYTHONPATH for espnet_lrsms, then runs side by side
# (full rank vs LR-SMS): the training step at the paper's 2400 frames (8 x 300, whole model) in
# float32 and in bf16 autocast, with peak memory from torch.cuda.max_memory_allocated, and the decoding
# bench (the paper's beam 40). Prints the tables and a README-ready summary; logs in $LOG_DIR.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
wheels=${WHEELS:-$repo/.whl}
site=/tmp/gpu_check_site
log_dir=${LOG_DIR:-${OUT:-/tmp}/gpu_check}
device=cuda
dry_run=false
fetch=false

while [ $# -gt 0 ]; do
    case $1 in
        --device) device=$2; shift 2 ;;
        --dry_run) dry_run=true; shift ;;
        --fetch_wheels) fetch=true; shift ;;
        *) echo "unknown option $1 (see the Usage block)" >&2; exit 2 ;;
    esac
done

if $fetch; then
    mkdir -p "$wheels"
    mapfile -t pins < <(grep -v '^#' "$repo/bench/gpu_wheels.txt" | grep -v '^$' | grep -v -e '^soundfile' -e '^cffi')
    "$python" -m pip wheel -q --no-deps -w "$wheels" "${pins[@]}"
    "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$wheels" soundfile==0.14.0 cffi==2.1.1
    grep -qx '/.whl/' "$repo/.git/info/exclude" 2>/dev/null || echo '/.whl/' >> "$repo/.git/info/exclude"
    du -sh "$wheels"
    exit 0
fi

start=$(date +%s)
if ! "$python" -c 'import espnet2' 2>/dev/null; then
    [ -d "$wheels" ] || { echo "no ESPnet and no wheels in $wheels: run bench/gpu_check.sh --fetch_wheels first" >&2; exit 1; }
    echo "installing $(ls "$wheels"/*.whl | wc -l) wheels from $wheels into $site"
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$wheels"/*.whl
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$repo${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
mkdir -p "$log_dir"

if $dry_run; then
    train=(--frames 40 --batch_size 2 --steps 2 --warmup 1 --vocab_size 50)
    decode=(--utterances 1 --seconds 1 --beam_size 2 --vocab_size 50)
else
    train=(--frames 2400 --batch_size 8 --steps 20 --warmup 3)
    decode=(--utterances 5 --seconds 8 --beam_size 40)
fi
if [ "$device" = cpu ]; then train+=(--no_memory); fi

"$python" - <<'PY'
import torch
print(f"torch {torch.__version__}, CUDA {torch.cuda.is_available()}"
      + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
PY
for dtype in float32 bfloat16; do
    echo "== training step, $dtype"
    "$python" "$repo/bench/train_step.py" --device "$device" --dtype "$dtype" --parts all "${train[@]}" \
        --out "$log_dir/train_$dtype.csv" 2>&1 | tee "$log_dir/train_$dtype.log" | { grep -v -i -e warn -e nltk || true; }
done
echo "== decoding"
"$python" "$repo/bench/decode.py" --device "$device" "${decode[@]}" 2>&1 | tee "$log_dir/decode.log" \
    | { grep -v -i -e warn -e nltk || true; }

echo "== README rows ($(( $(date +%s) - start )) s in all)"
"$python" - "$log_dir" <<'PY'
import csv, re, sys
from pathlib import Path
log_dir = Path(sys.argv[1])
print("| step | device | speed-up (LR-SMS vs full rank) | memory | FLOP bound | median s (full / LR-SMS) |")
print("|---|---|---|---|---|---|")
for dtype in ("float32", "bfloat16"):
    rows = list(csv.DictReader(open(log_dir / f"train_{dtype}.csv")))
    full, lrsms = rows[0], rows[1]
    memory = f"{float(lrsms['memory_ratio']):.2f}x" if lrsms["memory_ratio"] else "-"
    print(f"| training, whole model, {full['frames']} frames, {dtype} | {full['device_name']} | "
          f"{float(lrsms['speed_up']):.2f}x | {memory} | {float(lrsms['bound']):.2f}x | "
          f"{float(full['median_s']):.3f} / {float(lrsms['median_s']):.3f} |")
lines = (log_dir / "decode.log").read_text().splitlines()
table = [line.split() for line in lines if re.match(r"conformer_\S+\s+[\d.]+\s+[\d.]+\s+[\d.]+", line)]
if len(table) == 2:
    print(f"| decoding (RTF full / LR-SMS: {table[0][2]} / {table[1][2]}) | | {table[1][3]}x | | | |")
PY
