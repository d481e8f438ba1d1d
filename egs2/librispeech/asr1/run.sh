#!/usr/bin/env bash
# LibriSpeech ASR with LR-SMS (paper: Table II, 115 M). Corpus root: LIBRISPEECH in db.sh or the
# environment (the directory holding LibriSpeech/), prepared by local/data.sh (stage 1). Any asr.sh option
# can follow, e.g.
#   ./run.sh --stage 11 --stop_stage 13 --ngpu 4 --asr_config conf/asr/train_asr_conformer_full_rank.yaml
set -euo pipefail
export LRSMS_CALLER_DIR="${LRSMS_CALLER_DIR:-$PWD}"  # options name files relative to here
cd "$(dirname "$0")"
. ./db.sh

train_set=train_960
valid_set=dev
test_sets="test_clean test_other dev_clean dev_other"
# LM stages 6-9 and rescoring 17 (with --lm_config): the LibriSpeech LM corpus (openslr 11) next to LibriSpeech/, if there
lm_corpus=""
[[ -f "${LIBRISPEECH}/librispeech-lm-norm.txt.gz" ]] && lm_corpus="${LIBRISPEECH}/librispeech-lm-norm.txt.gz"

./asr.sh \
    --lang en \
    --nbpe 5000 \
    --bpemode unigram \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --asr_config conf/asr/train_asr_conformer_lrsms.yaml \
    --inference_config conf/decode_asr.yaml \
    --lm_corpus "${lm_corpus}" \
    --lm_tune_set dev_clean \
    "$@"
