#!/usr/bin/env bash
# The shared ASR recipe of espnet-lrsms: ESPnet's egs2/TEMPLATE/asr1/asr.sh stages and option names,
# run from this repository alone (no Kaldi, no SCTK, no ESPnet checkout). A corpus' run.sh sets the
# defaults and calls this script; every option below can be given as --name value.
#
#   1. data prep          data/<set>/{wav.scp,text,utt2spk,spk2utt}
#   2. tokenizer          SentencePiece (--bpemode, --nbpe) + ESPnet token list
#   3. shapes ("stats")   speech_shape / text_shape.bpe for ESPnet's batch samplers
#   4. training           espnet2.bin.launch -> espnet_lrsms.bin.asr_train (resumes with --resume true)
#   5. decoding           espnet_lrsms.bin.asr_inference, --inference_nj jobs, n-best kept
#   6. scoring            <asr_exp>/<inference_tag>/<set>/score_{wer,cer}/{ref.trn,hyp.trn,result.txt}
#                         + <asr_exp>/RESULTS.md (inference_tag: decode_asr_asr_model_valid.acc.ave, as ESPnet)
#   7. packing            espnet2.bin.pack -> <asr_exp>/<model>.zip
#
# Every stage writes to a temporary name and renames, so an interrupted stage leaves nothing that a
# later stage would take as finished; re-running a stage redoes it.
set -euo pipefail

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*"; }
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)  # egs2/TEMPLATE/asr1, also via a symlink
# shellcheck source=/dev/null
. "${here}/path.sh"

# General
stage=1
stop_stage=100
ngpu=1
num_nodes=1
host=""                  # comma-separated hosts for multi-node training over SSH (ESPnet's launch --host)
nj=4                     # parallel jobs for data prep
inference_nj=4           # parallel decoding jobs
gpu_inference=false
python=python3
train_cmd="${here}/utils/run_local.sh"
cuda_cmd="${here}/utils/run_local.sh"
decode_cmd="${here}/utils/run_local.sh"

# Data
corpus=""                # librispeech | lrs3
corpus_root=""
train_set=""
valid_set=""
test_sets=""
on_error=stop            # stop | skip: what data prep does with a broken utterance
datadir=data

# Tokenizer
token_type=bpe
nbpe=5000
bpemode=unigram
lang=en

# Training
expdir=exp
asr_config=""
asr_tag=""
asr_args=""
asr_stats_dir=""

# Decoding
inference_config=""
inference_tag=""
inference_args=""
inference_asr_model=valid.acc.ave.pth

help_message="Usage: $0 --corpus <librispeech|lrs3> --corpus_root <dir> --train_set <set> --valid_set <set> --test_sets \"<set> ...\" --asr_config <yaml> --inference_config <yaml> [options]
Options (ESPnet's spelling): --stage --stop_stage --ngpu --num_nodes --host --nj --inference_nj --gpu_inference
  --asr_config --inference_config --train_set --valid_set --test_sets --nbpe --bpemode --expdir --asr_tag
  --asr_args --inference_args --inference_tag --inference_asr_model --on_error --python"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --help|-h) echo "$help_message"; exit 0 ;;
        --*)
            name=${1#--}
            if ! declare -p "$name" >/dev/null 2>&1 || [[ "$name" =~ [^a-z_0-9] ]]; then
                echo "$0: unknown option $1" >&2; echo "$help_message" >&2; exit 1
            fi
            [[ $# -ge 2 ]] || { echo "$0: option $1 needs a value" >&2; exit 1; }
            printf -v "$name" '%s' "$2"
            shift 2 ;;
        *) echo "$0: unexpected argument $1" >&2; echo "$help_message" >&2; exit 1 ;;
    esac
done

for var in corpus corpus_root train_set valid_set asr_config; do
    [[ -n "${!var}" ]] || { echo "$0: --${var} is required" >&2; exit 1; }
done
[[ -f "$asr_config" ]] || { echo "$0: --asr_config ${asr_config}: no such file" >&2; exit 1; }
if [[ -n "$inference_config" && ! -f "$inference_config" ]]; then
    echo "$0: --inference_config ${inference_config}: no such file" >&2; exit 1
fi

bpedir="${datadir}/${lang}_token_list/${token_type}_${bpemode}${nbpe}"
bpemodel="${bpedir}/bpe.model"
token_list="${bpedir}/tokens.txt"
[[ -n "$asr_stats_dir" ]] || asr_stats_dir="${expdir}/asr_stats_raw_${lang}_${token_type}${nbpe}"
[[ -n "$asr_tag" ]] || asr_tag="$(basename "${asr_config}" .yaml)_raw_${lang}_${token_type}${nbpe}"
asr_exp="${expdir}/asr_${asr_tag}"
if [[ -z "$inference_tag" ]]; then
    if [[ -n "$inference_config" ]]; then
        inference_tag="$(basename "${inference_config}" .yaml)"
    else
        inference_tag=inference
    fi
    inference_tag+="_asr_model_${inference_asr_model%.pth}"
fi

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
    log "Stage 1: data preparation for ${train_set} ${valid_set} ${test_sets} from ${corpus_root}"
    # shellcheck disable=SC2086
    ${python} -m espnet_lrsms.bin.prepare_data --corpus "${corpus}" --corpus_root "${corpus_root}" \
        --sets ${train_set} ${valid_set} ${test_sets} --data_dir "${datadir}" --nj "${nj}" --on_error "${on_error}"
fi

if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
    log "Stage 2: ${bpemode} tokenizer with ${nbpe} pieces on ${datadir}/${train_set}/text -> ${bpedir}"
    ${python} -m espnet_lrsms.bin.train_tokenizer --text "${datadir}/${train_set}/text" \
        --out_dir "${bpedir}" --nbpe "${nbpe}" --mode "${bpemode}"
fi

if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then
    log "Stage 3: shape files -> ${asr_stats_dir}"
    for pair in "train:${train_set}" "valid:${valid_set}"; do
        ${python} -m espnet_lrsms.bin.make_shapes --data_dir "${datadir}/${pair#*:}" \
            --out_dir "${asr_stats_dir}/${pair%%:*}" --bpemodel "${bpemodel}" --token_list "${token_list}"
    done
fi

if [[ $stage -le 4 && $stop_stage -ge 4 ]]; then
    log "Stage 4: training -> ${asr_exp} (log: ${asr_exp}/train.log; ngpu=${ngpu}, num_nodes=${num_nodes})"
    mkdir -p "${asr_exp}"
    launch_opts=(--cmd "${cuda_cmd} --gpu ${ngpu}" --log "${asr_exp}/train.log" --ngpu "${ngpu}"
                 --num_nodes "${num_nodes}" --init_file_prefix "${asr_exp}/.dist_init_"
                 --multiprocessing_distributed true)
    [[ -n "$host" ]] && launch_opts+=(--host "${host}")
    # shellcheck disable=SC2086
    ${python} -m espnet2.bin.launch "${launch_opts[@]}" -- \
        ${python} -m espnet_lrsms.bin.asr_train \
            --use_preprocessor true \
            --token_type "${token_type}" --bpemodel "${bpemodel}" --token_list "${token_list}" \
            --train_data_path_and_name_and_type "${datadir}/${train_set}/wav.scp,speech,sound" \
            --train_data_path_and_name_and_type "${datadir}/${train_set}/text,text,text" \
            --valid_data_path_and_name_and_type "${datadir}/${valid_set}/wav.scp,speech,sound" \
            --valid_data_path_and_name_and_type "${datadir}/${valid_set}/text,text,text" \
            --train_shape_file "${asr_stats_dir}/train/speech_shape" \
            --train_shape_file "${asr_stats_dir}/train/text_shape.${token_type}" \
            --valid_shape_file "${asr_stats_dir}/valid/speech_shape" \
            --valid_shape_file "${asr_stats_dir}/valid/text_shape.${token_type}" \
            --resume true \
            --output_dir "${asr_exp}" \
            --config "${asr_config}" \
            ${asr_args}
fi

decode_opts=()
[[ -n "$inference_config" ]] && decode_opts+=(--config "${inference_config}")
if [[ $stage -le 5 && $stop_stage -ge 5 ]]; then
    _ngpu=0; [[ "$gpu_inference" == true ]] && _ngpu=1
    for dset in ${test_sets}; do
        _dir="${asr_exp}/${inference_tag}/${dset}"
        _logdir="${_dir}/logdir"
        log "Stage 5: decoding ${dset} with ${asr_exp}/${inference_asr_model} -> ${_dir}"
        rm -rf "${_dir}.tmp" && mkdir -p "${_dir}.tmp/logdir"
        _nj=$(( inference_nj < $(wc -l < "${datadir}/${dset}/wav.scp") ? inference_nj : $(wc -l < "${datadir}/${dset}/wav.scp") ))
        awk -v n="${_nj}" -v d="${_dir}.tmp/logdir" '{ print > (d "/keys." ((NR - 1) % n + 1) ".scp") }' \
            "${datadir}/${dset}/wav.scp"
        # shellcheck disable=SC2086
        ${decode_cmd} --gpu "${_ngpu}" JOB=1:"${_nj}" "${_dir}.tmp/logdir/asr_inference.JOB.log" \
            ${python} -m espnet_lrsms.bin.asr_inference \
                --batch_size 1 --ngpu "${_ngpu}" \
                --data_path_and_name_and_type "${datadir}/${dset}/wav.scp,speech,sound" \
                --key_file "${_dir}.tmp/logdir/keys.JOB.scp" \
                --asr_train_config "${asr_exp}/config.yaml" \
                --asr_model_file "${asr_exp}/${inference_asr_model}" \
                --output_dir "${_dir}.tmp/logdir/output.JOB" \
                "${decode_opts[@]}" ${inference_args} \
            || { log "decoding failed; see ${_dir}.tmp/logdir/asr_inference.*.log"; exit 1; }
        # merge the jobs' n-best directories: <n>best_recog/{text,token,token_int,score}
        for nbest_dir in "${_dir}.tmp/logdir/output.1/"*best_recog; do
            name=$(basename "${nbest_dir}")
            mkdir -p "${_dir}.tmp/${name}"
            for f in text token token_int score; do
                if [[ -f "${nbest_dir}/${f}" ]]; then
                    for ((i = 1; i <= _nj; i++)); do cat "${_dir}.tmp/logdir/output.${i}/${name}/${f}"; done \
                        | sort -k1,1 > "${_dir}.tmp/${name}/${f}"
                fi
            done
        done
        rm -rf "${_dir}" && mv "${_dir}.tmp" "${_dir}"
    done
fi

if [[ $stage -le 6 && $stop_stage -ge 6 ]]; then
    for dset in ${test_sets}; do
        _dir="${asr_exp}/${inference_tag}/${dset}"
        log "Stage 6: scoring ${_dir}"
        ${python} -m espnet_lrsms.bin.score --data_dir "${datadir}/${dset}" --decode_dir "${_dir}" \
            --results_md "${asr_exp}"
    done
    cat "${asr_exp}/RESULTS.md"
fi

if [[ $stage -le 7 && $stop_stage -ge 7 ]]; then
    _pack="${asr_exp}/${inference_asr_model%.pth}.zip"
    _tmp_pack="${asr_exp}/.packing_${inference_asr_model%.pth}.zip"  # pack reads the format from the suffix
    log "Stage 7: packing ${asr_exp}/${inference_asr_model} -> ${_pack}"
    ${python} -m espnet2.bin.pack asr \
        --asr_train_config "${asr_exp}/config.yaml" \
        --asr_model_file "${asr_exp}/${inference_asr_model}" \
        --option "${bpemodel}" \
        --option "${asr_exp}/RESULTS.md" \
        --outpath "${_tmp_pack}"
    mv "${_tmp_pack}" "${_pack}"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
