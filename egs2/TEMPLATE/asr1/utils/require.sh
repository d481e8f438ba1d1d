# Sourced by asr.sh and avsr.sh: a stage checks its inputs before it writes anything, and stops with exit 1
# naming the first one missing (so nothing half-written is left behind).
#   require_files <stage> <what makes them> <file>...   each file must exist and not be empty
#   require_count <stage> <option> <value>              a job count: a whole number of at least 1
#   require_words <stage> <option> <value>              a list option (--test_sets, --snrs) that names something
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
