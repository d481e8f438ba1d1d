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
#   7. packing            espnet_lrsms.bin.pack (ESPnet's pack; meta.yaml names espnet_lrsms) -> <asr_exp>/<model>.zip
#   8. LM training        Transformer LM (ESPnet's LM task) on --lm_train_text [+ --lm_corpus] -> <expdir>/lm_<lm_tag>
#   9. LoRA adaptation    one adapted LM per --lora_config, on --lora_train_text -> <lm_exp>_lora_<name>
#  10. n-best rescoring   AM + λ·LM + β·words, (λ, β) tuned on --lm_tune_set, every LM, every test set;
#                         scored as stage 6 (RESULTS.md: before and after rows) + NPRR (robustness.txt)
# Stages 8-10 run only with --lm_config (see docs/lm_rescoring.md).
#
# Every stage writes to a temporary name and renames, so an interrupted stage leaves nothing that a
# later stage would take as finished; re-running a stage redoes it.
set -euo pipefail

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*"; }
path_list() {  # <array name> <value>: a list option's files; the whole value when it names one (a path with spaces)
    local -n _list=$1
    if [[ -e "$2" ]]; then _list=("$2"); else read -r -a _list <<< "$2"; fi
}
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
# job runners: a command name and its options, split into words (ESPnet's launcher splits --cmd the same
# way), so a runner is named by its name on PATH (path.sh puts utils/ there), never by a path that may hold a space
train_cmd=run_local.sh
cuda_cmd=run_local.sh
decode_cmd=run_local.sh

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

# Language model and rescoring (stages 8-10; skipped without --lm_config)
lm_config=""             # ESPnet LM training config, e.g. conf/lm/train_lm_transformer.yaml
lm_tag=""
lm_args=""
lm_train_text=""         # Kaldi text file(s) for the LM, space-separated; default: <datadir>/<train_set>/text
lm_corpus=""             # plain-text LM corpus (a sentence a line, .gz ok), added to lm_train_text
lm_base_model=valid.loss.best.pth
lora_config=""           # LoRA configs (conf/lm/lora_*.yaml), space-separated: one adapted LM each
lora_train_text=""       # in-domain Kaldi text(s) for the adaptation; default: <datadir>/<train_set>/text
lora_args=""
lora_model=latest.pth    # the adapted LM at the end of training: the ranks its strategy ends with
lm_tune_set=""           # a decoded set whose WER picks λ and β; default: --valid_set
lm_weights="0:1.5:0.05"  # λ grid (start:stop:step)
length_bonuses="0:4:0.5" # β grid, per word
lm_robustness=true       # stage 10 also measures NPRR on the other test sets
nprr_args="--substitution_rate 0.3 --seed 0"

help_message="Usage: $0 --corpus <librispeech|lrs3> --corpus_root <dir> --train_set <set> --valid_set <set> --test_sets \"<set> ...\" --asr_config <yaml> --inference_config <yaml> [options]
Options (ESPnet's spelling): --stage --stop_stage --ngpu --num_nodes --host --nj --inference_nj --gpu_inference
  --asr_config --inference_config --train_set --valid_set --test_sets --nbpe --bpemode --expdir --asr_tag
  --asr_args --inference_args --inference_tag --inference_asr_model --on_error --python
  LM rescoring (stages 8-10): --lm_config --lm_tag --lm_args --lm_train_text --lm_corpus --lm_base_model --lora_config
  --lora_train_text --lora_args --lora_model --lm_tune_set --lm_weights --length_bonuses --lm_robustness --nprr_args"

# shellcheck source=utils/parse_options.sh
. "${here}/utils/parse_options.sh"

for var in corpus corpus_root train_set valid_set asr_config; do
    [[ -n "${!var}" ]] || { echo "$0: --${var} is required" >&2; exit 1; }
done
[[ -f "$asr_config" ]] || { echo "$0: --asr_config ${asr_config}: no such file" >&2; exit 1; }
if [[ -n "$inference_config" && ! -f "$inference_config" ]]; then
    echo "$0: --inference_config ${inference_config}: no such file" >&2; exit 1
fi
path_list lora_configs "${lora_config}"

bpedir="${datadir}/${lang}_token_list/${token_type}_${bpemode}${nbpe}"
bpemodel="${bpedir}/bpe.model"
token_list="${bpedir}/tokens.txt"
[[ -n "$asr_stats_dir" ]] || asr_stats_dir="${expdir}/asr_stats_raw_${lang}_${token_type}${nbpe}"
# tags name what was overridden, as ESPnet's do: another --asr_args / --inference_args is another
# experiment or decode directory, never the old one reused
if [[ -z "$asr_tag" ]]; then
    asr_tag="$(basename "${asr_config}" .yaml)_raw_${lang}_${token_type}${nbpe}"
    if [[ -n "$asr_args" ]]; then asr_tag+="$(echo "${asr_args}" | sed -e "s/--/_/g" -e "s/[ |=/]//g")"; fi
fi
asr_exp="${expdir}/asr_${asr_tag}"
if [[ -z "$inference_tag" ]]; then
    if [[ -n "$inference_config" ]]; then
        inference_tag="$(basename "${inference_config}" .yaml)"
    else
        inference_tag=inference
    fi
    if [[ -n "$inference_args" ]]; then inference_tag+="$(echo "${inference_args}" | sed -e "s/--/_/g" -e "s/[ |=/]//g")"; fi
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
    ${python} -m espnet_lrsms.bin.make_shapes --bpemodel "${bpemodel}" --token_list "${token_list}" \
        --pair "${datadir}/${train_set}" "${asr_stats_dir}/train" --pair "${datadir}/${valid_set}" "${asr_stats_dir}/valid"
fi

if [[ $stage -le 4 && $stop_stage -ge 4 ]]; then
    log "Stage 4: training -> ${asr_exp} (log: ${asr_exp}/train.log; ngpu=${ngpu}, num_nodes=${num_nodes})"
    for f in "${token_list}" "${datadir}/${train_set}/wav.scp" "${datadir}/${train_set}/text" \
             "${datadir}/${valid_set}/wav.scp" "${datadir}/${valid_set}/text" \
             "${asr_stats_dir}/train/speech_shape" "${asr_stats_dir}/valid/speech_shape"; do
        [[ -s "$f" ]] || { log "Stage 4 needs ${f} (made by stages 1-3), which is missing or empty"; exit 1; }
    done
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
        [[ -f "${asr_exp}/${inference_asr_model}" ]] \
            || { log "no model ${asr_exp}/${inference_asr_model} (run stage 4, or set --inference_asr_model)"; exit 1; }
        rm -rf "${_dir}.tmp" && mkdir -p "${_dir}.tmp/logdir"
        ${python} -m espnet_lrsms.bin.decode_jobs split --scp "${datadir}/${dset}/wav.scp" \
            --nj "${inference_nj}" --logdir "${_dir}.tmp/logdir" || { rm -rf "${_dir}.tmp"; exit 1; }
        _nj=$(find "${_dir}.tmp/logdir" -maxdepth 1 -name 'keys.*.scp' | wc -l)  # at most one job per utterance
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
        # merge the jobs' n-best directories: <n>best_recog/{text,token,token_int,score,score_components}
        ${python} -m espnet_lrsms.bin.decode_jobs merge --logdir "${_dir}.tmp/logdir" --nj "${_nj}" --out_dir "${_dir}.tmp" \
            || exit 1
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
    ${python} -m espnet_lrsms.bin.pack asr \
        --asr_train_config "${asr_exp}/config.yaml" \
        --asr_model_file "${asr_exp}/${inference_asr_model}" \
        --option "${bpemodel}" \
        --option "${asr_exp}/RESULTS.md" \
        --outpath "${_tmp_pack}"
    mv "${_tmp_pack}" "${_pack}"
fi

if [[ -n "$lm_config" && $stop_stage -ge 8 ]]; then
    [[ -f "$lm_config" ]] || { echo "$0: --lm_config ${lm_config}: no such file" >&2; exit 1; }
    for _cfg in "${lora_configs[@]}"; do
        [[ -f "$_cfg" ]] || { echo "$0: --lora_config: ${_cfg}: no such file" >&2; exit 1; }
    done
    [[ -n "$lm_tag" ]] || lm_tag="$(basename "${lm_config}" .yaml)_${lang}_${token_type}${nbpe}"
    lm_exp="${expdir}/lm_${lm_tag}"
    lm_stats_dir="${expdir}/lm_stats_${lang}_${token_type}${nbpe}"
    [[ -n "$lm_train_text" ]] || lm_train_text="${datadir}/${train_set}/text"
    [[ -n "$lora_train_text" ]] || lora_train_text="${datadir}/${train_set}/text"
    [[ -n "$lm_tune_set" ]] || lm_tune_set="${valid_set}"
elif [[ $stop_stage -ge 8 && $stage -le 10 ]]; then
    log "Stages 8-10 (LM training, LoRA adaptation, n-best rescoring) skipped: no --lm_config"
fi

lora_exp_of() {  # <lm_exp>_lora_<config name less a leading "lora_">
    local name; name=$(basename "$1" .yaml)
    echo "${lm_exp}_lora_${name#lora_}"
}

lm_train() {  # <output dir> <set under lm_stats_dir> <config> [lm_train options]: one LM training run
    local out=$1 set=$2 cfg=$3; shift 3
    mkdir -p "${out}"
    ${python} -m espnet2.bin.launch --cmd "${cuda_cmd} --gpu ${ngpu}" --log "${out}/train.log" --ngpu "${ngpu}" \
        --num_nodes 1 --init_file_prefix "${out}/.dist_init_" --multiprocessing_distributed true -- \
        ${python} -m espnet_lrsms.bin.lm_train --ngpu "${ngpu}" --use_preprocessor true \
            --token_type "${token_type}" --bpemodel "${bpemodel}" --token_list "${token_list}" --resume true \
            --train_data_path_and_name_and_type "${lm_stats_dir}/${set}/text,text,text" \
            --valid_data_path_and_name_and_type "${lm_stats_dir}/valid/text,text,text" \
            --train_shape_file "${lm_stats_dir}/${set}/text_shape.${token_type}" \
            --valid_shape_file "${lm_stats_dir}/valid/text_shape.${token_type}" \
            --output_dir "${out}" --config "${cfg}" "$@" \
        || { log "LM training failed; see ${out}/train.log"; exit 1; }
}

if [[ -n "$lm_config" && $stage -le 8 && $stop_stage -ge 8 ]]; then
    log "Stage 8: LM texts -> ${lm_stats_dir}; LM training (${lm_train_text}${lm_corpus:+ + ${lm_corpus}}) -> ${lm_exp}"
    _text_opts=(--text valid "${datadir}/${valid_set}/text")
    path_list _files "${lm_train_text}"
    for f in "${_files[@]}"; do _text_opts+=(--text train "${f}"); done
    path_list _files "${lm_corpus}"
    for f in "${_files[@]}"; do _text_opts+=(--plain_text train "${f}"); done
    if [[ -n "$lora_config" ]]; then
        path_list _files "${lora_train_text}"
        for f in "${_files[@]}"; do _text_opts+=(--text lora_train "${f}"); done
    fi
    ${python} -m espnet_lrsms.bin.lm_prepare_text --out_root "${lm_stats_dir}" "${_text_opts[@]}" \
        --bpemodel "${bpemodel}" --token_list "${token_list}"
    # shellcheck disable=SC2086
    lm_train "${lm_exp}" train "${lm_config}" ${lm_args}
fi

if [[ -n "$lm_config" && -n "$lora_config" && $stage -le 9 && $stop_stage -ge 9 ]]; then
    for _cfg in "${lora_configs[@]}"; do
        _lora_exp=$(lora_exp_of "${_cfg}")
        log "Stage 9: LoRA adaptation of ${lm_exp}/${lm_base_model} (${lora_train_text}) with ${_cfg} -> ${_lora_exp}"
        # shellcheck disable=SC2086
        lm_train "${_lora_exp}" lora_train "${_cfg}" --base_lm_config "${lm_exp}/config.yaml" \
            --base_lm_file "${lm_exp}/${lm_base_model}" ${lora_args}
        grep -h "LoRA strategy" "${_lora_exp}/train.log" | tail -n 1 | sed 's/^.*INFO: //'
    done
fi

if [[ -n "$lm_config" && $stage -le 10 && $stop_stage -ge 10 ]]; then
    _decode_root="${asr_exp}/${inference_tag}"
    if [[ ! -d "${_decode_root}/${lm_tune_set}/1best_recog" ]]; then
        echo "$0: stage 10 tunes the LM weight on ${lm_tune_set} (--lm_tune_set, default --valid_set), which has no" \
             "n-best decode in ${_decode_root}/${lm_tune_set}: add it to --test_sets and run stages 5-6, or name a" \
             "decoded dev set with --lm_tune_set" >&2
        exit 1
    fi
    _lms=("${lm_exp}:${lm_base_model}")
    for _cfg in "${lora_configs[@]}"; do _lms+=("$(lora_exp_of "${_cfg}"):${lora_model}"); done
    _decode_opts=()
    for dset in ${test_sets}; do _decode_opts+=(--decode_dir "${_decode_root}/${dset}"); done
    for _lm in "${_lms[@]}"; do
        _lm_dir=${_lm%%:*}; _lm_file="${_lm_dir}/${_lm#*:}"
        _out="${_decode_root}_rescore_$(basename "${_lm_dir}")"
        log "Stage 10: rescoring ${test_sets} with ${_lm_file} (weights tuned on ${lm_tune_set}) -> ${_out}"
        # shellcheck disable=SC2086
        ${python} -m espnet_lrsms.bin.lm_rescore --lm_train_config "${_lm_dir}/config.yaml" --lm_file "${_lm_file}" \
            --tune_decode_dir "${_decode_root}/${lm_tune_set}" --tune_text "${datadir}/${lm_tune_set}/text" \
            "${_decode_opts[@]}" --output_root "${_out}" --lm_weights "${lm_weights}" \
            --length_bonuses "${length_bonuses}" --data_root "${datadir}" --results_md "${asr_exp}" \
            --robustness "${lm_robustness}" ${nprr_args}
    done
    cat "${asr_exp}/RESULTS.md"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
