#!/usr/bin/env bash
# Stage 1 of the LibriSpeech recipe (ESPnet's local/data.sh, run by asr.sh with --local_data_opts): the corpus under
# LIBRISPEECH (db.sh or the environment; the directory that holds LibriSpeech/) -> <datadir>/<set>/{wav.scp,text,
# utt2spk,spk2utt}, sets in ESPnet's names (train_clean_100, ..., train_960 and dev: the combined subsets).
# Defaults: what asr.sh gives in the environment (LRSMS_DATA_SETS, LRSMS_DATADIR, LRSMS_NJ, LRSMS_ON_ERROR;
# docs/recipes.md, "Add a corpus"); options override them.
set -euo pipefail
sets=${LRSMS_DATA_SETS:-"train_960 dev test_clean test_other dev_clean dev_other"}
datadir=${LRSMS_DATADIR:-data}
nj=${LRSMS_NJ:-4}
on_error=${LRSMS_ON_ERROR:-stop}  # stop | skip: what is done with a broken utterance
help_message="Usage: $0 [--sets \"<set> ...\"] [--datadir <dir>] [--nj <n>] [--on_error stop|skip]"
. utils/parse_options.sh
[[ $# -eq 0 ]] || { echo "$0: unexpected argument $1 (options only: --name value)" >&2; exit 1; }
. ./db.sh
. ./path.sh
[[ -d "$LIBRISPEECH" ]] || { echo "$0: LIBRISPEECH=${LIBRISPEECH}: no such directory (the directory that holds LibriSpeech/; set it in db.sh or the environment)" >&2; exit 1; }
# shellcheck disable=SC2086
python3 -m espnet_lrsms.bin.prepare_data librispeech --corpus_root "${LIBRISPEECH}" --sets ${sets} \
    --data_dir "${datadir}" --nj "${nj}" --on_error "${on_error}"
