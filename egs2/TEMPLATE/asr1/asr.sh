#!/usr/bin/env bash
# shellcheck disable=SC2034  # options are also read by name (${!name}: parse_options.sh, run_stage)
# The shared ASR recipe of espnet-lrsms: ESPnet's egs2/TEMPLATE/asr1/asr.sh, with its stage numbers and option
# names, run from this repository alone (no Kaldi, no SCTK, no ESPnet checkout). A corpus' run.sh sets the
# defaults and calls this script; every option below can be given as --name value (or --name-with-hyphens value).
#
#   1. data prep           data/<set>/{wav.scp,text,utt2spk,spk2utt} from the corpus' own layout
#   2. speed perturbation  with --speed_perturb_factors (e.g. "0.9 1.0 1.1"): data/<train_set>_sp, which the
#                          later stages train on (tags and stats dir get _sp, as ESPnet's)
#   3. format audio        nothing to do here: the front end reads wav.scp's audio as it is (ESPnet dumps it)
#   4. duration filter     ESPnet's --min_wav_duration/--max_wav_duration (0.1 and 20 s) on the training set
#                          (<train_set>_sp after stage 2) and the validation set, never the test sets: the
#                          left-out utterances are listed in data/<set>/filtered.txt; the unfiltered set stays
#                          in data/<set>/org/, which a re-run of stage 4 (other bounds too) filters again
#   5. token list          SentencePiece (--bpemode, --nbpe) on the training text + ESPnet token list
#   6. LM text             the LM's training/validation text tokenized + shape files -> <expdir>/lm_stats_*
#   7. LM training         Transformer LM (ESPnet's LM task) on --lm_train_text [+ --lm_corpus] -> <expdir>/lm_<lm_tag>
#   8. LM perplexity       espnet2.bin.lm_calc_perplexity of that LM on each test set's text -> <lm_exp>/perplexity_<set>/ppl
#   9. LoRA adaptation     this project's stage, where ESPnet trains its n-gram LM: one adapted LM per
#                          --lora_config, on --lora_train_text -> <lm_exp>_lora_<name>
#  10. shape files         speech_shape / text_shape.bpe for ESPnet's batch samplers (ESPnet's "collect stats";
#                          no feature statistics: the front end normalises each utterance itself)
#  11. training            espnet2.bin.launch -> espnet_lrsms.bin.asr_train (resumes with --resume true);
#                          <asr_exp>/run.sh re-runs the command from stage 11
#  12. decoding            espnet_lrsms.bin.asr_inference, --inference_nj jobs, n-best kept; with --use_lm true,
#                          shallow fusion with the LM of stage 7 (--inference_lm; or --inference_lm_exp, e.g. a
#                          LoRA-adapted LM of stage 9) at the decoding config's lm_weight, into
#                          <inference_tag> with ESPnet's _lm_<lm exp>_<inference_lm less .pth> in it
#  13. scoring             <asr_exp>/<inference_tag>/<set>/score_{wer,cer,ter}/{ref.trn,hyp.trn,result.txt} (TER
#                          in bpe.model's pieces; --cleaner, --hyp_cleaner, --nlsyms_txt as ESPnet's)
#                          + <asr_exp>/RESULTS.md (inference_tag: decode_asr_asr_model_valid.acc.ave, as ESPnet)
#  14. packing             espnet_lrsms.bin.pack (ESPnet's pack; meta.yaml names espnet_lrsms) -> <asr_exp>/<model>.zip
#  15. HF model repo       the pack as a Hugging Face model repository (model card included) -> <asr_exp>/hf_repo
#  16. HF upload           <asr_exp>/hf_repo pushed to --hf_repo (only with --hf_repo)
#  17. n-best rescoring    this project's: AM + λ·LM + β·words, (λ, β) tuned on --lm_tune_set, every LM, every
#                          test set; scored as stage 13 (RESULTS.md: before and after rows) + NPRR (robustness.txt)
# Stages 6-9 and 17 run only with --lm_config (see docs/lm_rescoring.md). As in ESPnet, --skip_data_prep true
# leaves out stages 1-5, --skip_train 6-11, --skip_eval 12-13 (here also 17), --skip_packing 14 and
# --skip_upload_hf 15-16 (true by default). Job runners: the recipe's cmd.sh (local, or SLURM).
#
# Every stage writes to a temporary name and renames, so an interrupted stage leaves nothing that a
# later stage would take as finished; re-running a stage redoes it.
set -euo pipefail

run_args=("$0" "$@")  # the command line, for <asr_exp>/run.sh
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*"; }
path_list() {  # <array name> <value>: a list option's files; the whole value when it names one (a path with spaces)
    local -n _list=$1
    if [[ -f "$2" ]]; then _list=("$2"); else read -r -a _list <<< "$2"; fi
}
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)  # egs2/TEMPLATE/asr1, also via a symlink
# shellcheck source=/dev/null
. "${here}/path.sh"

# General
stage=1
stop_stage=10000
skip_data_prep=false     # stages 1-5
skip_train=false         # stages 6-11 (LM, LoRA adaptation, shape files, training)
skip_eval=false          # stages 12-13 and 17 (decoding, scoring, n-best rescoring)
skip_packing=false       # stage 14
skip_upload_hf=true      # stages 15-16
ngpu=1
num_nodes=1
host=""                  # comma-separated hosts for multi-node training over SSH (ESPnet's launch --host)
nj=4                     # parallel jobs for data prep
inference_nj=4           # parallel decoding jobs
gpu_inference=false
python=python3
# job runners: a command name and its options, split into words (ESPnet's launcher splits --cmd the same
# way), so a runner is named by its name on PATH (path.sh puts utils/ there), never by a path that may hold a
# space. The recipe's cmd.sh sets them (ESPnet's convention); --train_cmd etc. override it.
train_cmd=run_local.sh
cuda_cmd=run_local.sh
decode_cmd=run_local.sh
# shellcheck source=/dev/null
if [[ -f ./cmd.sh ]]; then . ./cmd.sh; fi

# Data
corpus=""                # librispeech | lrs3
corpus_root=""
train_set=""
valid_set=""
test_sets=""
on_error=stop            # stop | skip: what data prep does with a broken utterance
valid_speakers=""        # LRS3: the dev speakers, one id per line (e.g. ESPnet's data/dev/spk2utt); default: the list
                         # an earlier stage 1 left in data/lrs3_dev_speakers.txt, else ESPnet's 92/8 split rule
datadir=data
speed_perturb_factors="" # stage 2, e.g. "0.9 1.0 1.1" (ESPnet's); empty: no speed perturbation
min_wav_duration=0.1     # stage 4: training and validation utterances not longer than this (seconds) are left out
max_wav_duration=20.0    # stage 4: ... and those not shorter than this (ESPnet's defaults; written 20.0: any
                         # number, not only whole ones)

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
warmup_full_rank_epochs=0 # stage 11: E > 0 trains the config's architecture dense (lowrank: null) for E epochs,
                          # truncates it to the config's ranks by SVD and trains on low-rank to max_epoch

# Decoding
inference_config=""
inference_tag=""
inference_args=""
inference_asr_model=valid.acc.ave.pth
use_lm=false             # stage 12: shallow fusion with the LM of stage 7. ESPnet's default is true; false here,
                         # as the paper decodes without an LM (it rescores n-best lists instead: stage 17)
inference_lm=valid.loss.best.pth  # the LM checkpoint to fuse (ESPnet's default: valid.loss.ave.pth)
inference_lm_exp=""      # the LM directory to fuse; default: the LM of stage 7 (<expdir>/lm_<lm_tag>).
                         # e.g. a LoRA-adapted LM of stage 9, with --inference_lm latest.pth

# Scoring (stage 13; ESPnet's options and defaults)
cleaner=none             # text cleaner on the references, e.g. tacotron
hyp_cleaner=none         # the same on the hypotheses
nlsyms_txt=none          # non-linguistic symbols (one a line) removed before scoring

# Language model and rescoring (stages 6-9 and 17; skipped without --lm_config)
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
lm_robustness=true       # stage 17 also measures NPRR on the other test sets
nprr_args="--substitution_rate 0.3 --seed 0"

# Upload (stages 15-16, with --skip_upload_hf false)
hf_repo=""               # <user or org>/<name> on the Hugging Face hub; stage 16 pushes only with it

help_message="Usage: $0 --corpus <librispeech|lrs3> --corpus_root <dir> --train_set <set> --valid_set <set> --test_sets \"<set> ...\" --asr_config <yaml> --inference_config <yaml> [options]
Options (ESPnet's spelling; --name-with-hyphens works too): --stage --stop_stage --skip_data_prep --skip_train
  --skip_eval --skip_packing --skip_upload_hf --ngpu --num_nodes --host --nj --inference_nj --gpu_inference
  --train_cmd --cuda_cmd --decode_cmd --speed_perturb_factors --min_wav_duration --max_wav_duration
  --asr_config --inference_config --train_set --valid_set --test_sets --nbpe --bpemode --expdir --asr_tag
  --asr_args --warmup_full_rank_epochs --inference_args --inference_tag --inference_asr_model --on_error --valid_speakers --python --hf_repo
  --cleaner --hyp_cleaner --nlsyms_txt (scoring, ESPnet's; default none)
  --use_lm true|false (stage 12 shallow fusion; default false: the paper decodes without an LM)
  --inference_lm --inference_lm_exp
  LM (stages 6-9) and rescoring (17): --lm_config --lm_tag --lm_args --lm_train_text --lm_corpus --lm_base_model
  --lora_config --lora_train_text --lora_args --lora_model --lm_tune_set --lm_weights --length_bonuses --lm_robustness
  --nprr_args"

# shellcheck source=utils/parse_options.sh
. "${here}/utils/parse_options.sh"
# shellcheck source=utils/stages.sh
. "${here}/utils/stages.sh"
check_skip_options

for var in corpus corpus_root train_set valid_set asr_config; do
    [[ -n "${!var}" ]] || { echo "$0: --${var} is required" >&2; exit 1; }
done
[[ -f "$asr_config" ]] || { echo "$0: --asr_config ${asr_config}: no such file" >&2; exit 1; }
if [[ -n "$inference_config" && ! -f "$inference_config" ]]; then
    echo "$0: --inference_config ${inference_config}: no such file" >&2; exit 1
fi
lora_configs=() _files=()
path_list lora_configs "${lora_config}"

bpedir="${datadir}/${lang}_token_list/${token_type}_${bpemode}${nbpe}"
bpemodel="${bpedir}/bpe.model"
token_list="${bpedir}/tokens.txt"
# stage 2 makes <train_set>_sp, which stages 10-11 train on; the tokenizer and the LM read the texts of the
# set as prepared (the same sentences)
text_set="${train_set}"
[[ -z "$speed_perturb_factors" ]] || train_set="${train_set}_sp"
if [[ -z "$asr_stats_dir" ]]; then
    asr_stats_dir="${expdir}/asr_stats_raw_${lang}_${token_type}${nbpe}"
    [[ -z "$speed_perturb_factors" ]] || asr_stats_dir+="_sp"
fi
# tags name what was overridden, as ESPnet's do: another --asr_args / --inference_args is another
# experiment or decode directory, never the old one reused
if [[ -z "$asr_tag" ]]; then
    asr_tag="$(basename "${asr_config}" .yaml)_raw_${lang}_${token_type}${nbpe}"
    if [[ -n "$asr_args" ]]; then asr_tag+="$(echo "${asr_args}" | sed -e "s/--/_/g" -e "s/[ |=/]//g")"; fi
    [[ -z "$speed_perturb_factors" ]] || asr_tag+="_sp"
    (( warmup_full_rank_epochs == 0 )) || asr_tag+="_warmup_full_rank${warmup_full_rank_epochs}"
fi
asr_exp="${expdir}/asr_${asr_tag}"
if [[ -n "$lm_config" ]]; then
    [[ -f "$lm_config" ]] || { echo "$0: --lm_config ${lm_config}: no such file" >&2; exit 1; }
    for _cfg in "${lora_configs[@]}"; do
        [[ -f "$_cfg" ]] || { echo "$0: --lora_config: ${_cfg}: no such file" >&2; exit 1; }
    done
    [[ -n "$lm_tag" ]] || lm_tag="$(basename "${lm_config}" .yaml)_${lang}_${token_type}${nbpe}"
    lm_exp="${expdir}/lm_${lm_tag}"
    lm_stats_dir="${expdir}/lm_stats_${lang}_${token_type}${nbpe}"
    [[ -n "$lm_train_text" ]] || lm_train_text="${datadir}/${text_set}/text"
    [[ -n "$lora_train_text" ]] || lora_train_text="${datadir}/${text_set}/text"
    [[ -n "$lm_tune_set" ]] || lm_tune_set="${valid_set}"
fi
[[ "$use_lm" == true || "$use_lm" == false ]] || { echo "$0: --use_lm ${use_lm}: expected true or false" >&2; exit 1; }
fusion_lm_exp=""         # stage 12's shallow-fusion LM directory (--use_lm true)
if [[ "$use_lm" == true ]]; then
    fusion_lm_exp="${inference_lm_exp:-${lm_exp:-}}"
    if [[ -z "$fusion_lm_exp" ]]; then
        echo "$0: --use_lm true needs an LM to fuse: --lm_config (stages 6-7 train it into <expdir>/lm_<lm_tag>)" \
             "or --inference_lm_exp <LM dir>" >&2
        exit 1
    fi
fi
if [[ -z "$inference_tag" ]]; then
    inference_tag="$(inference_tag_of "${inference_config}" "${inference_args}")"
    if [[ "$use_lm" == true ]]; then  # ESPnet's: fused and plain decodes never share a directory
        inference_tag+="_lm_$(basename "${fusion_lm_exp}")_$(echo "${inference_lm}" | sed -e "s/\//_/g" -e "s/\.[^.]*$//g")"
    fi
    inference_tag+="_asr_model_${inference_asr_model%.pth}"
fi
use_lm() {  # <stage>: stages 6-9 and 17 need --lm_config
    [[ -n "$lm_config" ]] && return 0
    log "Stage $1 skipped: no --lm_config (LM stages 6-9 and n-best rescoring 17; docs/lm_rescoring.md)"
    return 1
}

# ========================== data preparation: stages 1-5 ==========================

if run_stage 1; then
    [[ -d "$corpus_root" ]] || { echo "$0: Stage 1 needs the corpus root ${corpus_root} (--corpus_root, or db.sh), which does not exist" >&2; exit 1; }
    require_count 1 --nj "${nj}"
    log "Stage 1: data preparation for ${text_set} ${valid_set} ${test_sets} from ${corpus_root}"
    split_opts=()
    if [[ -n "$valid_speakers" ]]; then
        require_caller_file 1 --valid_speakers valid_speakers
        split_opts=(--valid_speakers "${valid_speakers}")
    fi
    # shellcheck disable=SC2086
    ${python} -m espnet_lrsms.bin.prepare_data --corpus "${corpus}" --corpus_root "${corpus_root}" \
        --sets ${text_set} ${valid_set} ${test_sets} --data_dir "${datadir}" --nj "${nj}" --on_error "${on_error}" \
        "${split_opts[@]}"
fi

if run_stage 2; then
    if [[ -n "$speed_perturb_factors" ]]; then
        require_files 2 "made by stage 1" "${datadir}/${text_set}/wav.scp" "${datadir}/${text_set}/text"
        log "Stage 2: speed perturbation (factors ${speed_perturb_factors}): ${datadir}/${text_set} -> ${datadir}/${train_set}"
        # shellcheck disable=SC2086
        ${python} -m espnet_lrsms.bin.speed_perturb --data_dir "${datadir}/${text_set}" --out_dir "${datadir}/${train_set}" \
            --factors ${speed_perturb_factors} --nj "${nj}"
    else
        log "Stage 2: no speed perturbation (--speed_perturb_factors is empty)"
    fi
fi

if run_stage 3; then
    log "Stage 3: nothing to format: the front end reads the audio that wav.scp names as it is"
fi

if run_stage 4; then
    require_count 4 --nj "${nj}"
    require_files 4 "made by stage 1$([[ -z "$speed_perturb_factors" ]] || echo ", and stage 2 for ${train_set}")" \
        "${datadir}/${train_set}/wav.scp" "${datadir}/${valid_set}/wav.scp"
    log "Stage 4: duration filter (${min_wav_duration} s < duration < ${max_wav_duration} s) on ${datadir}/${train_set} and ${datadir}/${valid_set}"
    ${python} -m espnet_lrsms.bin.filter_durations --data_dir "${datadir}/${train_set}" "${datadir}/${valid_set}" \
        --min_wav_duration "${min_wav_duration}" --max_wav_duration "${max_wav_duration}" --nj "${nj}"
fi

if run_stage 5; then
    require_files 5 "made by stage 1" "${datadir}/${text_set}/text"
    log "Stage 5: ${bpemode} tokenizer with ${nbpe} pieces on ${datadir}/${text_set}/text -> ${bpedir}"
    ${python} -m espnet_lrsms.bin.train_tokenizer --text "${datadir}/${text_set}/text" \
        --out_dir "${bpedir}" --nbpe "${nbpe}" --mode "${bpemode}"
fi

# ========================== training: stages 6-11 ==========================

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

if run_stage 6 && use_lm 6; then
    require_files 6 "made by stage 5" "${bpemodel}" "${token_list}"
    log "Stage 6: LM texts (${lm_train_text}${lm_corpus:+ + ${lm_corpus}}) -> ${lm_stats_dir}"
    _text_opts=(--text valid "${datadir}/${valid_set}/text")
    path_list _files "${lm_train_text}"
    for f in "${_files[@]}"; do _text_opts+=(--text train "${f}"); done
    path_list _files "${lm_corpus}"
    for f in "${_files[@]}"; do _text_opts+=(--plain_text train "${f}"); done
    if [[ -n "$lora_config" ]]; then
        path_list _files "${lora_train_text}"
        for f in "${_files[@]}"; do _text_opts+=(--text lora_train "${f}"); done
    fi
    for ((i = 2; i < ${#_text_opts[@]}; i += 3)); do require_files 6 "a --lm_train_text, --lm_corpus or --lora_train_text" "${_text_opts[i]}"; done
    ${python} -m espnet_lrsms.bin.lm_prepare_text --out_root "${lm_stats_dir}" "${_text_opts[@]}" \
        --bpemodel "${bpemodel}" --token_list "${token_list}"
fi

if run_stage 7 && use_lm 7; then
    require_files 7 "made by stage 6" "${lm_stats_dir}/train/text" "${lm_stats_dir}/valid/text"
    log "Stage 7: LM training -> ${lm_exp} (log: ${lm_exp}/train.log)"
    write_run_sh "${lm_exp}" 7
    # shellcheck disable=SC2086
    lm_train "${lm_exp}" train "${lm_config}" ${lm_args}
fi

if run_stage 8 && use_lm 8; then
    require_words 8 --test_sets "${test_sets}"
    require_files 8 "made by stage 7" "${lm_exp}/config.yaml" "${lm_exp}/${lm_base_model}"
    for dset in ${test_sets}; do
        require_files 8 "made by stage 1" "${datadir}/${dset}/text"
    done
    for dset in ${test_sets}; do
        _out="${lm_exp}/perplexity_${dset}"
        log "Stage 8: perplexity of ${lm_exp}/${lm_base_model} on ${datadir}/${dset}/text -> ${_out}/ppl"
        rm -rf "${_out}.tmp"
        # shellcheck disable=SC2086
        ${cuda_cmd} --gpu "${ngpu}" "${_out}.tmp/lm_calc_perplexity.log" \
            ${python} -m espnet2.bin.lm_calc_perplexity --ngpu "${ngpu}" \
                --data_path_and_name_and_type "${datadir}/${dset}/text,text,text" \
                --train_config "${lm_exp}/config.yaml" --model_file "${lm_exp}/${lm_base_model}" \
                --output_dir "${_out}.tmp" \
            || { log "perplexity failed; see ${_out}.tmp/lm_calc_perplexity.log"; exit 1; }
        rm -rf "${_out}" && mv "${_out}.tmp" "${_out}"
        log "PPL ${dset}: $(cat "${_out}/ppl")"
    done
fi

if run_stage 9 && use_lm 9; then
    if [[ ${#lora_configs[@]} -eq 0 ]]; then
        log "Stage 9: no LoRA adaptation (--lora_config is empty)"
    else
        require_files 9 "made by stage 7" "${lm_exp}/config.yaml" "${lm_exp}/${lm_base_model}"
        require_files 9 "made by stage 6 with --lora_config given" "${lm_stats_dir}/lora_train/text"
    fi
    for _cfg in "${lora_configs[@]}"; do
        _lora_exp=$(lora_exp_of "${_cfg}")
        log "Stage 9: LoRA adaptation of ${lm_exp}/${lm_base_model} (${lora_train_text}) with ${_cfg} -> ${_lora_exp}"
        # shellcheck disable=SC2086
        lm_train "${_lora_exp}" lora_train "${_cfg}" --base_lm_config "${lm_exp}/config.yaml" \
            --base_lm_file "${lm_exp}/${lm_base_model}" ${lora_args}
        grep -h "LoRA strategy" "${_lora_exp}/train.log" | tail -n 1 | sed 's/^.*INFO: //'
    done
fi

if run_stage 10; then
    require_files 10 "made by stage 5" "${bpemodel}" "${token_list}"
    require_files 10 "made by stage 1$([[ -z "$speed_perturb_factors" ]] || echo ", and stage 2 for ${train_set}")" \
        "${datadir}/${train_set}/wav.scp" "${datadir}/${train_set}/text" "${datadir}/${valid_set}/wav.scp" "${datadir}/${valid_set}/text"
    log "Stage 10: shape files -> ${asr_stats_dir}"
    ${python} -m espnet_lrsms.bin.make_shapes --bpemodel "${bpemodel}" --token_list "${token_list}" \
        --pair "${datadir}/${train_set}" "${asr_stats_dir}/train" --pair "${datadir}/${valid_set}" "${asr_stats_dir}/valid"
fi

if run_stage 11; then
    log "Stage 11: training -> ${asr_exp} (log: ${asr_exp}/train.log; ngpu=${ngpu}, num_nodes=${num_nodes})"
    require_files 11 "made by stage 5" "${bpemodel}" "${token_list}"
    require_files 11 "made by stage 1$([[ -z "$speed_perturb_factors" ]] || echo ", and stage 2 for ${train_set}")" \
        "${datadir}/${train_set}/wav.scp" "${datadir}/${train_set}/text" "${datadir}/${valid_set}/wav.scp" "${datadir}/${valid_set}/text"
    require_files 11 "made by stage 10" "${asr_stats_dir}/train/speech_shape" "${asr_stats_dir}/valid/speech_shape"
    write_run_sh "${asr_exp}" 11
    launch_opts=(--cmd "${cuda_cmd} --gpu ${ngpu}" --ngpu "${ngpu}"
                 --num_nodes "${num_nodes}" --init_file_prefix "${asr_exp}/.dist_init_"
                 --multiprocessing_distributed true)
    [[ -n "$host" ]] && launch_opts+=(--host "${host}")
    train_asr() {  # <log> [extra training arguments]: ESPnet training through its launcher, resumed if begun
        local log_file=$1; shift
        # shellcheck disable=SC2086
        ${python} -m espnet2.bin.launch "${launch_opts[@]}" --log "${log_file}" -- \
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
                ${asr_args} "$@"
    }
    if (( warmup_full_rank_epochs > 0 )) && [[ ! -f "${asr_exp}/full_rank_warmup/switched" ]]; then
        # the dense warm-up of the same architecture (lowrank: null), then the switch to the config's ranks
        _warmup=$(${python} -m espnet_lrsms.bin.full_rank_warmup args --config "${asr_config}" \
            --epochs "${warmup_full_rank_epochs}" --asr_args "${asr_args}") || exit 1
        mapfile -t _warmup_args <<< "${_warmup}"
        log "Stage 11: full-rank warm-up for ${warmup_full_rank_epochs} epoch(s): ${_warmup_args[*]} (log: ${asr_exp}/train_full_rank_warmup.log)"
        train_asr "${asr_exp}/train_full_rank_warmup.log" "${_warmup_args[@]}"
        log "Stage 11: truncating the warm-up to the ranks of ${asr_config} (dense files kept in ${asr_exp}/full_rank_warmup)"
        ${python} -m espnet_lrsms.bin.full_rank_warmup switch --exp_dir "${asr_exp}" --config "${asr_config}"
    fi
    train_asr "${asr_exp}/train.log"
fi

# ========================== evaluation, packing, upload: stages 12-16 ==========================

decode_opts=()
[[ -n "$inference_config" ]] && decode_opts+=(--config "${inference_config}")
if run_stage 12; then
    require_files 12 "made by stage 11, or set --inference_asr_model" "${asr_exp}/config.yaml" "${asr_exp}/${inference_asr_model}"
    if [[ "$use_lm" == true ]]; then
        require_files 12 "for --use_lm true: made by stage $([[ -n "$inference_lm_exp" ]] && echo "7 or 9 (--inference_lm_exp)" || echo 7), or set --inference_lm" \
            "${fusion_lm_exp}/config.yaml" "${fusion_lm_exp}/${inference_lm}"
        _lm_weight=""
        if [[ -n "$inference_config" ]]; then
            _lm_weight=$(${python} -c 'import sys, yaml; print((yaml.safe_load(open(sys.argv[1])) or {}).get("lm_weight", ""))' "${inference_config}")
        fi
        if [[ "$inference_args" =~ --lm_weight[=\ ]+([^ ]+) ]]; then _lm_weight=${BASH_REMATCH[1]}; fi
        if [[ -z "$_lm_weight" ]] || awk -v w="${_lm_weight}" 'BEGIN { exit !(w + 0 == 0) }'; then
            echo "$0: Stage 12: --use_lm true needs a non-zero lm_weight, and the decoding config" \
                 "(${inference_config:-none}) and --inference_args give ${_lm_weight:-none}: use a fusion config" \
                 "(e.g. conf/demo/decode_asr_tiny_lm.yaml) or --inference_args \"--lm_weight 0.3\"" >&2
            exit 1
        fi
        decode_opts+=(--lm_train_config "${fusion_lm_exp}/config.yaml" --lm_file "${fusion_lm_exp}/${inference_lm}")
        log "Stage 12: shallow fusion with ${fusion_lm_exp}/${inference_lm} (lm_weight ${_lm_weight})"
    fi
    _ngpu=0; [[ "$gpu_inference" == true ]] && _ngpu=1
    for dset in ${test_sets}; do
        _dir="${asr_exp}/${inference_tag}/${dset}"
        _logdir="${_dir}/logdir"
        log "Stage 12: decoding ${dset} with ${asr_exp}/${inference_asr_model} -> ${_dir}"
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

if run_stage 13; then
    for dset in ${test_sets}; do
        require_files 13 "made by stage 12" "${asr_exp}/${inference_tag}/${dset}/1best_recog/text"
    done
    # ESPnet's scoring: WER, CER, and TER in the pieces of bpe.model for token_type bpe
    score_opts=(--cleaner "${cleaner}" --hyp_cleaner "${hyp_cleaner}")
    [[ "$nlsyms_txt" == none ]] || score_opts+=(--nlsyms_txt "${nlsyms_txt}")
    if [[ "$token_type" == bpe ]]; then
        require_files 13 "made by stage 5" "${bpemodel}"
        score_opts+=(--bpemodel "${bpemodel}")
    fi
    for dset in ${test_sets}; do
        _dir="${asr_exp}/${inference_tag}/${dset}"
        log "Stage 13: scoring ${_dir}"
        ${python} -m espnet_lrsms.bin.score --data_dir "${datadir}/${dset}" --decode_dir "${_dir}" \
            "${score_opts[@]}" --results_md "${asr_exp}"
    done
    cat "${asr_exp}/RESULTS.md"
fi

_pack="${asr_exp}/${inference_asr_model%.pth}.zip"
if run_stage 14; then
    pack_model "${asr_exp}" "${inference_asr_model}"
fi

if run_stage 15; then
    require_files 15 "made by stage 14" "${_pack}"
    log "Stage 15: Hugging Face model repository from ${_pack} -> ${asr_exp}/hf_repo"
    ${python} -m espnet_lrsms.bin.hf_model_repo --pack "${_pack}" --out_dir "${asr_exp}/hf_repo" \
        --corpus "${corpus}" --lang "${lang}" --task asr ${hf_repo:+--hf_repo "${hf_repo}"}
fi

if run_stage 16; then
    if [[ -z "$hf_repo" ]]; then
        log "Stage 16: nothing uploaded (no --hf_repo)"
    else
        require_files 16 "made by stage 15" "${asr_exp}/hf_repo/README.md"
        log "Stage 16: uploading ${asr_exp}/hf_repo to https://huggingface.co/${hf_repo}"
        ${python} -m espnet_lrsms.bin.hf_model_repo --repo_dir "${asr_exp}/hf_repo" --hf_repo "${hf_repo}" --push
    fi
fi

# ========================== this project's: stage 17 ==========================

if run_stage 17 && use_lm 17; then
    _decode_root="${asr_exp}/${inference_tag}"
    if [[ ! -d "${_decode_root}/${lm_tune_set}/1best_recog" ]]; then
        echo "$0: stage 17 tunes the LM weight on ${lm_tune_set} (--lm_tune_set, default --valid_set), which has no" \
             "n-best decode in ${_decode_root}/${lm_tune_set}: add it to --test_sets and run stages 12-13, or name a" \
             "decoded dev set with --lm_tune_set" >&2
        exit 1
    fi
    _lms=("${lm_exp}:${lm_base_model}")
    for _cfg in "${lora_configs[@]}"; do _lms+=("$(lora_exp_of "${_cfg}"):${lora_model}"); done
    for _lm in "${_lms[@]}"; do
        _lm_dir=${_lm%%:*}
        require_files 17 "made by stage $([[ "$_lm_dir" == "$lm_exp" ]] && echo 7 || echo 9)" \
            "${_lm_dir}/config.yaml" "${_lm_dir}/${_lm#*:}"
    done
    _decode_opts=()
    for dset in ${test_sets}; do _decode_opts+=(--decode_dir "${_decode_root}/${dset}"); done
    for _lm in "${_lms[@]}"; do
        _lm_dir=${_lm%%:*}; _lm_file="${_lm_dir}/${_lm#*:}"
        _out="${_decode_root}_rescore_$(basename "${_lm_dir}")"
        log "Stage 17: rescoring ${test_sets} with ${_lm_file} (weights tuned on ${lm_tune_set}) -> ${_out}"
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
