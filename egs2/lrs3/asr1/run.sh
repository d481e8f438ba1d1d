#!/usr/bin/env bash
# Audio-only ASR on LRS3 with LR-SMS (paper: Table II, 115 M). Corpus root: LRS3 in db.sh or the
# environment (the directory holding pretrain/, trainval/, test/). Stage 1 is local/data.sh (audio decoded
# from the mp4 files with PyAV; its options, e.g. --valid_speakers, through --local_data_opts). Any asr.sh
# option can follow.
set -euo pipefail
export LRSMS_CALLER_DIR="${LRSMS_CALLER_DIR:-$PWD}"  # options name files relative to here
cd "$(dirname "$0")"

train_set="train"   # pretrain + trainval, less the clips of the dev speakers
valid_set="dev"     # ESPnet's speaker-disjoint dev: the trainval clips of 8 % of its speakers (the list:
                    # data/lrs3_dev_speakers.txt, written by stage 1; put ESPnet's or a colleague's there to share it)
test_sets="test"

./asr.sh \
    --lang en \
    --nbpe 5000 \
    --bpemode unigram \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --asr_config conf/asr/train_asr_conformer_lrsms.yaml \
    --inference_config conf/decode_asr.yaml \
    "$@"
