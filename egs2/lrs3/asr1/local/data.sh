#!/usr/bin/env bash
# Stage 1 of the LRS3 ASR recipe (ESPnet's local/data.sh, run by asr.sh with --local_data_opts): the corpus under
# LRS3 (db.sh or the environment; the directory that holds pretrain/, trainval/, test/) -> <datadir>/<set>/{wav.scp,
# text,utt2spk,spk2utt}, the audio decoded from the mp4 files (PyAV), cached per clip in <datadir>/audio/<set>.
# Sets: train (pretrain + trainval less the dev speakers), ESPnet's speaker-disjoint dev, test. The dev speakers:
# --valid_speakers (one id per line, e.g. ESPnet's data/dev/spk2utt; relative to where run.sh was called), else
# the list an earlier run left in <datadir>/lrs3_dev_speakers.txt, else ESPnet's 92/8 rule.
# Defaults: what asr.sh gives in the environment (LRSMS_DATA_SETS, LRSMS_DATADIR, LRSMS_NJ, LRSMS_ON_ERROR;
# docs/recipes.md, "Add a corpus"); options override them.
set -euo pipefail
sets=${LRSMS_DATA_SETS:-"train dev test"}
datadir=${LRSMS_DATADIR:-data}
nj=${LRSMS_NJ:-4}
on_error=${LRSMS_ON_ERROR:-stop}  # stop | skip: what is done with a broken clip
valid_speakers=""
help_message="Usage: $0 [--sets \"<set> ...\"] [--datadir <dir>] [--nj <n>] [--on_error stop|skip] [--valid_speakers <file>]"
. utils/parse_options.sh
[[ $# -eq 0 ]] || { echo "$0: unexpected argument $1 (options only: --name value)" >&2; exit 1; }
. ./db.sh
. ./path.sh
[[ -d "$LRS3" ]] || { echo "$0: LRS3=${LRS3}: no such directory (the directory that holds pretrain/, trainval/, test/; set it in db.sh or the environment)" >&2; exit 1; }
split_opts=()
if [[ -n "$valid_speakers" ]]; then
    [[ "$valid_speakers" == /* || -f "$valid_speakers" ]] || valid_speakers="${LRSMS_CALLER_DIR:-.}/${valid_speakers}"
    [[ -f "$valid_speakers" ]] || { echo "$0: --valid_speakers ${valid_speakers}: no such file" >&2; exit 1; }
    split_opts=(--valid_speakers "${valid_speakers}")
fi
# shellcheck disable=SC2086
python3 -m espnet_lrsms.bin.prepare_data lrs3 --corpus_root "${LRS3}" --sets ${sets} \
    --data_dir "${datadir}" --nj "${nj}" --on_error "${on_error}" "${split_opts[@]}"
