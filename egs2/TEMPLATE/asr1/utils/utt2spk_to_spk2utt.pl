#!/usr/bin/env bash
# Kaldi's utils/utt2spk_to_spk2utt.pl, without Perl:
#   utt2spk_to_spk2utt.pl [<utt2spk>] > spk2utt
# One line per speaker, "<spk> <utt> <utt> ...", speakers in the order they first appear and each speaker's
# utterances in file order (from standard input without an argument). A line that is not "<utt> <spk>" stops
# it, naming the file and line.
set -euo pipefail
export LC_ALL=C
[[ $# -le 1 ]] || { echo "Usage: $0 [<utt2spk>] > spk2utt" >&2; exit 1; }
awk -v name="${1:-standard input}" '
NF != 2 { printf "utt2spk_to_spk2utt.pl: %s line %d: expected \"<utt> <spk>\", got \"%s\"\n", name, FNR, $0 > "/dev/stderr"; bad = 1; exit 2 }
{
    if (!($2 in utts)) { order[++n] = $2; utts[$2] = $1 } else utts[$2] = utts[$2] " " $1
}
END { if (bad) exit 2; for (i = 1; i <= n; i++) print order[i], utts[order[i]] }' "${1:--}" || exit 1
