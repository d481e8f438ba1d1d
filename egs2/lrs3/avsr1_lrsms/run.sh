#!/usr/bin/env bash
# Audio-visual LR-SMS on LRS3 (paper Table III, 140 M), and its robustness to babble noise at
# -7.5 ... 12.5 dB SNR. Corpus root: LRS3 in db.sh or the environment (the directory holding pretrain/,
# trainval/, test/). Mouth ROIs are cropped around 68-point landmarks: from --landmarks_dir (e.g. Auto-AVSR's
# released LRS3 landmarks) when given, else found by the face detector that comes with the package
# (dlib; --roi_method detect). Videos that already show only the mouth: --roi_method as_is.
# Any avsr.sh option can follow.
set -euo pipefail
export LRSMS_CALLER_DIR="${LRSMS_CALLER_DIR:-$PWD}"  # options name files relative to here
cd "$(dirname "$0")"
. ./db.sh

train_set="train"   # pretrain + trainval, less the clips of the dev speakers
valid_set="dev"     # ESPnet's speaker-disjoint dev: the trainval clips of 8 % of its speakers (the list:
                    # data/lrs3_dev_speakers.txt, written by stage 1; put ESPnet's or a colleague's there to share it)
test_sets="test"

./avsr.sh \
    --corpus_root "${LRS3}" \
    --lang en \
    --nbpe 5000 \
    --bpemode unigram \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --avsr_config conf/avsr/train_avsr_conformer_lrsms.yaml \
    --inference_config conf/avsr/decode_avsr.yaml \
    --snrs "-7.5 -2.5 2.5 7.5 12.5" \
    "$@"
