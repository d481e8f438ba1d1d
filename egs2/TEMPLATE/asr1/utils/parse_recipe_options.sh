# shellcheck shell=bash
# The command line of asr.sh and avsr.sh, sourced by both after their options' defaults and help_message: Kaldi's
# parse_options.sh (which sets the options and shifts them off the script's arguments), no positional argument
# (as ESPnet's), the stage helpers (stages.sh) and the --skip_* options checked.
# shellcheck source=parse_options.sh
. "${here}/utils/parse_options.sh"
if [[ $# -gt 0 ]]; then
    echo "$0: unexpected argument $1 (options only: --name value)" >&2; echo "$help_message" >&2; exit 1
fi
# shellcheck source=stages.sh
. "${here}/utils/stages.sh"
check_skip_options
