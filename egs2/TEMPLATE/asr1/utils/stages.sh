# shellcheck shell=bash disable=SC2154  # the sourcing script's variables (stage, stop_stage, help_message, ...)
# Sourced by asr.sh and avsr.sh (after their options are parsed): which stages run, what each needs, and the
# run.sh a training stage leaves behind. Stage numbers and --skip_* options are ESPnet's asr.sh's.
#
#   run_stage <n>                                       true when stage n is in --stage..--stop_stage and no
#                                                       --skip_* option nor --skip_stages leaves it out (that
#                                                       is logged)
#   check_skip_options                                  the --skip_* options are true or false, --skip_stages
#                                                       whole numbers
#   check_refused_options                               the ESPnet options a recipe lists in espnet_refused
#                                                       keep a value it accepts, else exit 1 with the reason
#   require_files <stage> <what makes them> <file>...   each file must exist and not be empty
#   require_count <stage> <option> <value>              a job count: a whole number of at least 1
#   require_words <stage> <option> <value>              a list option (--test_sets, --snrs) that names something
#   write_run_sh <dir> <stage>                          <dir>/run.sh: this command line again from <stage>
#   inference_tag_of <config> <args>                    ESPnet's default decode-directory name: the config's
#                                                       name (else "inference") and the args, flattened
#   packed_model_of <exp> <model>                       ESPnet's pack name: <exp>/<exp's name>_<model less
#                                                       its suffix>.zip
#   pack_model <exp> <model> <note> [<pack option>...]  stage 14: ESPnet's pack of <exp>/<model> with the bpe
#                                                       model (bpe only), the nlsyms file (if any), RESULTS.md,
#                                                       <exp>/images (when there) and the further
#                                                       espnet2.bin.pack options given -> packed_model_of
# A stage checks its inputs before it writes anything, and stops with exit 1 naming the first one missing
# (so nothing half-written is left behind).
run_stage() {
    [[ $stage -le $1 && $stop_stage -ge $1 ]] || return 1
    local skips=() skip
    # ESPnet 202511's: --skip_train also leaves out the training-data stages 2, 4 and 5 (evaluating a trained
    # model on freshly prepared test sets needs stages 1 and 3 only)
    case $1 in
        1|3) skips=(skip_data_prep) ;;
        2|4|5) skips=(skip_data_prep skip_train) ;;
        [6-9]|10|11) skips=(skip_train) ;;
        12|13|17) skips=(skip_eval) ;;
        14) skips=(skip_packing) ;;
        15) skips=(skip_upload_hf) ;;
    esac
    for skip in "${skips[@]}"; do
        if [[ "${!skip}" == true ]]; then
            echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) Stage $1 skipped (--${skip} true)"  # log, with the caller's line
            return 1
        fi
    done
    if [[ " ${skip_stages:-} " == *" $1 "* ]]; then
        echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) Stage $1 skipped (--skip_stages \"${skip_stages}\")"
        return 1
    fi
}
check_skip_options() {  # ESPnet's --skip_* options take true or false; --skip_stages stage numbers
    local name word
    for name in skip_data_prep skip_train skip_eval skip_packing skip_upload_hf; do
        if [[ "${!name}" != true && "${!name}" != false ]]; then
            echo "$0: --${name} takes true or false, got '${!name}'" >&2
            exit 1
        fi
    done
    for word in ${skip_stages:-}; do
        if [[ ! "$word" =~ ^[0-9]+$ ]]; then
            echo "$0: --skip_stages takes stage numbers separated by spaces (e.g. \"5 10\"), got '${skip_stages}'" >&2
            exit 1
        fi
    done
    skip_stages="$(for word in ${skip_stages:-}; do echo "$((10#$word))"; done | sort -nu | tr '\n' ' ')"
    skip_stages="${skip_stages% }"
}
check_refused_options() {  # espnet_refused: "<name>|<accepted values (\"\" for empty), the first the default>|<reason>"
    local entry name accepted reason value
    for entry in "${espnet_refused[@]}"; do
        IFS='|' read -r name accepted reason <<< "$entry"
        value="${!name}"
        [[ " ${accepted} " == *" ${value:-\"\"} "* ]] && continue
        echo "$0: --${name} ${value:-\"\"}: ${reason}" >&2
        exit 1
    done
}
require_files() {
    local stage=$1 source=$2 f
    shift 2
    for f in "$@"; do
        if [[ ! -s "$f" ]]; then
            echo "$0: Stage ${stage} needs ${f} (${source}), which is missing or empty" >&2
            exit 1
        fi
    done
}
require_caller_file() {  # <stage> <option> <variable>: a relative path is taken from run.sh's caller's directory
    local stage=$1 option=$2
    local -n _file=$3
    [[ "$_file" == /* || -f "$_file" ]] || _file="${LRSMS_CALLER_DIR:-.}/${_file}"
    [[ -f "$_file" ]] || { echo "$0: Stage ${stage}: ${option} ${_file}: no such file" >&2; exit 1; }
}
require_count() {
    if [[ ! "$3" =~ ^[0-9]+$ || "$3" -lt 1 ]]; then
        echo "$0: Stage $1: $2 must be at least 1, got $3" >&2
        exit 1
    fi
}
require_words() {
    if [[ -z "${3// /}" ]]; then
        echo "$0: Stage $1: $2 names nothing" >&2
        exit 1
    fi
}
write_run_sh() {  # as ESPnet's asr.sh leaves <asr_exp>/run.sh: the command line that ran (run_args), from <stage>
    local dir=$1 tmp="$1/.run.sh.tmp"
    mkdir -p "$dir"
    {
        echo "#!/usr/bin/env bash"
        echo "# Written by $(basename "$0") stage $2 on $(date '+%Y-%m-%dT%H:%M:%S'): the command line that ran, from stage $2"
        echo "# on (options after it win, e.g. --stop_stage $2)."
        printf 'cd %q && LRSMS_CALLER_DIR=%q' "$PWD" "${LRSMS_CALLER_DIR:-$PWD}"
        printf ' %q' "${run_args[@]}"
        printf ' --stage %s "$@"; exit $?\n' "$2"
    } > "$tmp"
    chmod +x "$tmp"
    mv "$tmp" "$dir/run.sh"
    log "Wrote ${dir}/run.sh: re-runs this command from stage $2"
}
inference_tag_of() {
    local tag=inference
    [[ -z "$1" ]] || tag="$(basename "$1" .yaml)"
    [[ -z "$2" ]] || tag+="$(echo "$2" | sed -e "s/--/_/g" -e "s/[ |=/]//g")"
    echo "$tag"
}
packed_model_of() {
    local exp=$1 model=$2
    echo "${exp}/${exp##*/}_${model%.*}.zip"
}
pack_model() {
    local exp=$1 model=$2 note=$3 pack tmp
    shift 3
    pack=$(packed_model_of "${exp}" "${model}")
    tmp="$(dirname "${pack}")/.packing_$(basename "${pack}")"  # pack reads the format from the suffix
    require_files 14 "made by stages 11 and 13" "${exp}/config.yaml" "${exp}/${model}" "${exp}/RESULTS.md"
    echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) Stage 14: packing ${exp}/${model} -> ${pack}${note:+ ($note)}"
    local opts=()  # as ESPnet's: bpe.model for token_type bpe only (bpemodel=none else), the nlsyms file if any
    [[ "${bpemodel}" == none ]] || opts+=(--option "${bpemodel}")
    [[ "${nlsyms_txt:-none}" == none ]] || opts+=(--option "${nlsyms_txt}")
    opts+=(--option "${exp}/RESULTS.md")
    [[ -d "${exp}/images" ]] && opts+=(--option "${exp}/images")  # the training curves, as ESPnet packs them
    ${python} -m espnet_lrsms.bin.pack asr \
        --asr_train_config "${exp}/config.yaml" \
        --asr_model_file "${exp}/${model}" \
        "${opts[@]}" "$@" \
        --outpath "${tmp}"
    mv "${tmp}" "${pack}"
}
