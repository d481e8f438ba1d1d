#!/usr/bin/env bash
# Kaldi's utils/filter_scp.pl, without Perl:
#   filter_scp.pl [--exclude] [-f <n>] <id-list> [<in.scp>] > out.scp
# Prints the lines of <in.scp> (default: standard input) whose n-th field (default: the first) is the first
# field of some line of <id-list> ("-": standard input); with --exclude, the lines whose field is not. Lines
# keep their order and their bytes. A line without that field stops it, naming the file and line.
set -euo pipefail
export LC_ALL=C
usage="Usage: $0 [--exclude] [-f <field-to-filter-on>] <id-list> [<in.scp>] > out.scp"
exclude=0 field=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --exclude) exclude=1; shift ;;
        -f) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "$0: -f takes a field number (1, 2, ...), got '${2:-}'" >&2; exit 1; }
            field=$2; shift 2 ;;
        -?*) echo "$0: unknown option $1" >&2; echo "$usage" >&2; exit 1 ;;
        *) break ;;
    esac
done
[[ $# -eq 1 || $# -eq 2 ]] || { echo "$usage" >&2; exit 1; }
ids=$1 in=${2:--}
[[ "$ids" == - ]] && ids=/dev/stdin
[[ "$in" == - ]] && in=/dev/stdin
for f in "$ids" "$in"; do [[ -r "$f" ]] || { echo "$0: cannot read $f" >&2; exit 1; }; done
awk -v exclude="$exclude" -v field="$field" -v ids="$ids" -v in_name="${2:-standard input}" -v ids_name="$1" '
BEGIN {
    n = 0
    while ((status = (getline line < ids)) > 0) {
        n++
        if (split(line, w) < 1) { printf "%s: %s line %d: an empty line (expected an id first)\n", "filter_scp.pl", ids_name, n > "/dev/stderr"; exit 2 }
        keep[w[1]] = 1
    }
    if (status < 0) { printf "filter_scp.pl: cannot read %s\n", ids_name > "/dev/stderr"; exit 2 }
}
{
    if (NF < field) { printf "filter_scp.pl: %s line %d: no field %d in \"%s\"\n", in_name, FNR, field, $0 > "/dev/stderr"; exit 2 }
    if (($(field) in keep) != exclude) print
}' "$in" || exit 1
