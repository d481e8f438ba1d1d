#!/usr/bin/env bash
# Kaldi's utils/spk2utt_to_utt2spk.pl, without Perl:
#   spk2utt_to_utt2spk.pl [<spk2utt> ...] > utt2spk
# "<utt> <spk>" for each utterance of each "<spk> <utt> <utt> ..." line, in file order (from standard input
# without an argument). A line without an utterance stops it, naming the file and line.
set -euo pipefail
export LC_ALL=C
[[ $# -gt 0 ]] || set -- -
for f in "$@"; do
    awk -v name="$( [[ "$f" == - ]] && echo "standard input" || echo "$f" )" '
    NF < 2 { printf "spk2utt_to_utt2spk.pl: %s line %d: expected \"<spk> <utt> ...\", got \"%s\"\n", name, FNR, $0 > "/dev/stderr"; exit 2 }
    { for (i = 2; i <= NF; i++) print $i, $1 }' "$f" || exit 1
done
