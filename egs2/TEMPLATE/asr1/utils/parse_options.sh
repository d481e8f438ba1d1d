# shellcheck shell=bash disable=SC2154  # the sourcing script's variables (stage, stop_stage, help_message, ...)
# Kaldi's utils/parse_options.sh, sourced after a script's option defaults (asr.sh, avsr.sh, the data-dir tools
# and ESPnet-style local/data.sh): each leading "--name value" pair sets the shell variable "name", which must
# already exist (a default), "-" in the name read as "_" (--stop-stage is stop_stage). Parsing stops at the first
# argument that does not start with "--" (or is empty); it and the rest stay in "$@" for the caller, which
# checks their number itself (asr.sh and avsr.sh refuse any). As in Kaldi:
#   --name=value is refused ("--name value" only); an option whose default is true or false takes true or false;
#   --config FILE sources FILE first (its settings below the command line's); --help prints $help_message;
#   --cmd "" is refused.
# Stricter than Kaldi's: an unknown option, or one without its value, stops with a message and $help_message;
# option names are lower case; an option whose default is a whole number (--stage, --nj, ...) takes only a whole
# number: its value may reach bash arithmetic, which would run commands hidden in it; it is read in base 10
# (--stage 08 is stage 8, never octal). Give a default such as 1.0 or 16k to an option that takes other values.
# A *_config option given relative to the directory run.sh was called from (LRSMS_CALLER_DIR, which run.sh sets
# before it changes to the recipe directory) is taken from there when the file exists there.
# Uses and shifts the caller's positional parameters.
_po_args=("$@")
for (( _po_i = 0; _po_i + 1 < ${#_po_args[@]}; _po_i += 2 )); do  # --config files first, left to right
    [[ "${_po_args[_po_i]}" == --* ]] || break
    if [[ "${_po_args[_po_i]}" == --config ]]; then
        [[ -r "${_po_args[_po_i + 1]}" ]] || { echo "$0: --config ${_po_args[_po_i + 1]}: no such file" >&2; exit 1; }
        # shellcheck source=/dev/null
        . "${_po_args[_po_i + 1]}"
    fi
done
unset _po_args _po_i
while [[ $# -gt 0 && -n "$1" ]]; do  # (_po_*: this file's own variables, so that no option name is taken)
    case "$1" in
        --help|-h) echo "${help_message:-No help found.}"; exit 0 ;;
        --*=*) echo "$0: options must be of the form --name value, got '$1'" >&2; exit 1 ;;
        --config) shift 2; continue ;;  # sourced above
        --*)
            _po_name=${1#--}
            _po_name=${_po_name//-/_}  # --stop-stage is --stop_stage, as in Kaldi's parse_options.sh
            if [[ -z "$_po_name" || "$_po_name" =~ [^a-z_0-9] || "$_po_name" == _po_* ]] \
                    || ! declare -p "$_po_name" >/dev/null 2>&1; then
                echo "$0: unknown option $1" >&2; echo "${help_message:-}" >&2; exit 1
            fi
            [[ $# -ge 2 ]] || { echo "$0: option $1 needs a value" >&2; exit 1; }
            _po_value=$2
            if [[ "${!_po_name}" == true || "${!_po_name}" == false ]] && [[ "$_po_value" != true && "$_po_value" != false ]]; then
                echo "$0: $1 takes true or false, got '$_po_value'" >&2; exit 1
            fi
            if [[ "${!_po_name}" =~ ^-?[0-9]+$ ]]; then
                [[ "$_po_value" =~ ^(-?)([0-9]+)$ ]] || { echo "$0: option $1 takes a whole number, got '$2'" >&2; exit 1; }
                # base 10 always: bash arithmetic reads a leading 0 as octal (08 an error, 010 as 8)
                _po_value="${BASH_REMATCH[1]}$((10#${BASH_REMATCH[2]}))"
            fi
            if [[ "$_po_name" == *_config && -n "${LRSMS_CALLER_DIR:-}" ]]; then
                if [[ -n "$_po_value" && ( -f "$_po_value" || -f "${LRSMS_CALLER_DIR}/${_po_value}" ) ]]; then
                    _po_words=("$_po_value")  # one file, whatever spaces its name holds
                else
                    read -r -a _po_words <<< "$_po_value"  # --lora_config takes several files
                fi
                _po_resolved=()
                for _po_word in "${_po_words[@]}"; do
                    [[ "$_po_word" != /* && -f "${LRSMS_CALLER_DIR}/${_po_word}" ]] && _po_word="${LRSMS_CALLER_DIR}/${_po_word}"
                    _po_resolved+=("$_po_word")
                done
                _po_value="${_po_resolved[*]}"
            fi
            [[ "$_po_name" != cmd || -n "$_po_value" ]] || { echo "$0: empty argument to --cmd option" >&2; exit 1; }
            printf -v "$_po_name" '%s' "$_po_value"
            shift 2 ;;
        *) break ;;  # the first positional argument: it and the rest are the caller's
    esac
done
unset _po_name _po_value _po_words _po_resolved _po_word
true
