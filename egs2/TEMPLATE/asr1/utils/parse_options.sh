# shellcheck shell=bash disable=SC2154  # the sourcing script's variables (stage, stop_stage, help_message, ...)
# Sourced by the stage scripts (asr.sh, avsr.sh) after their option defaults, as Kaldi's parse_options.sh
# is: every "--name value" pair on the command line sets the shell variable "name", which must already
# exist (a default), with "-" in the name read as "_" (--stop-stage); unknown options, a missing value or a
# stray argument print "$help_message" and exit.
# An option whose default is a whole number (--stage, --nj, --ngpu, ...) takes only a whole number: its
# value reaches bash arithmetic, which would run commands hidden in it; it is read in base 10 (--stage 08 is
# stage 8, never octal).
# A *_config option given relative to the directory run.sh was called from (LRSMS_CALLER_DIR, which
# run.sh sets before it changes to the recipe directory) is taken from there when the file exists there.
# Uses and shifts the caller's positional parameters.
while [[ $# -gt 0 ]]; do
    case "$1" in
        --help|-h) echo "$help_message"; exit 0 ;;
        --*)
            name=${1#--}
            name=${name//-/_}  # --stop-stage is --stop_stage, as in Kaldi's parse_options.sh
            if ! declare -p "$name" >/dev/null 2>&1 || [[ "$name" =~ [^a-z_0-9] ]]; then
                echo "$0: unknown option $1" >&2; echo "$help_message" >&2; exit 1
            fi
            [[ $# -ge 2 ]] || { echo "$0: option $1 needs a value" >&2; exit 1; }
            value=$2
            if [[ "${!name}" =~ ^-?[0-9]+$ ]]; then
                [[ "$value" =~ ^(-?)([0-9]+)$ ]] || { echo "$0: option $1 takes a whole number, got '$2'" >&2; exit 1; }
                # base 10 always: bash arithmetic reads a leading 0 as octal (08 an error, 010 as 8)
                value="${BASH_REMATCH[1]}$((10#${BASH_REMATCH[2]}))"
            fi
            if [[ "$name" == *_config && -n "${LRSMS_CALLER_DIR:-}" ]]; then
                if [[ -n "$value" && ( -f "$value" || -f "${LRSMS_CALLER_DIR}/${value}" ) ]]; then
                    words=("$value")  # one file, whatever spaces its name holds
                else
                    read -r -a words <<< "$value"  # --lora_config takes several files
                fi
                resolved=()
                for word in "${words[@]}"; do
                    [[ "$word" != /* && -f "${LRSMS_CALLER_DIR}/${word}" ]] && word="${LRSMS_CALLER_DIR}/${word}"
                    resolved+=("$word")
                done
                value="${resolved[*]}"
            fi
            printf -v "$name" '%s' "$value"
            shift 2 ;;
        *) echo "$0: unexpected argument $1" >&2; echo "$help_message" >&2; exit 1 ;;
    esac
done
