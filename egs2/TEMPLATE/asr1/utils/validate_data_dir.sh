#!/usr/bin/env bash
# Kaldi's utils/validate_data_dir.sh, without Kaldi:
#   validate_data_dir.sh [--no-feats] [--no-text] [--no-wav] [--no-spk-sort] [--non-print] <data-dir>
# Checks a Kaldi data directory as Kaldi's does and stops at the first fault with one line naming the file and
# line: every table sorted by its first field (LC_ALL=C sort) without duplicates and ending with a newline;
# utt2spk of "<utt> <spk>" lines, also sorted by speaker (speaker ids prefixes of utterance ids) unless
# --no-spk-sort, and spk2utt its inverse; text (unless --no-text), wav.scp (unless --no-wav) and feats.scp
# (unless --no-feats) required, each file indexed by the utterances of utt2spk; text of printable characters
# (unless --non-print), without a CR, other Unicode white space, or Kaldi's reserved words <s> </s> #0;
# segments "<utt> <rec> <start> <end>" with end > start (or -1: to the end of the recording, as kaldiio and
# stage 3 read it; Kaldi's own check refuses -1), its recordings exactly those of wav.scp, no "~" path in
# wav.scp; reco2file_and_channel, spk2gender (m/f), cmvn.scp, utt2lang, utt2uniq, vad.scp, utt2dur (> 0),
# utt2num_frames (whole > 0), reco2dur, spk2warp and utt2warp (0.5-1.5) when present. One speaker is a warning.
set -euo pipefail
dd_name=validate_data_dir.sh
# shellcheck source=data_dir_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/data_dir_lib.sh"
usage="Usage: $0 [--no-feats] [--no-text] [--non-print] [--no-wav] [--no-spk-sort] <data-dir>
The --no-xxx options mean that xxx need not be present (it is checked when it is); --no-spk-sort: utt2spk need
not also be sorted by speaker; --non-print: text may hold non-printable characters."
no_feats=false no_text=false no_wav=false no_spk_sort=false non_print=false data=""
while [[ $# -gt 0 ]]; do  # as Kaldi's: the options in any order, before or after the directory
    case "$1" in
        --no-feats) no_feats=true ;;
        --no-text) no_text=true ;;
        --no-wav) no_wav=true ;;
        --no-spk-sort) no_spk_sort=true ;;
        --non-print) non_print=true ;;
        --help|-h) echo "$usage"; exit 0 ;;
        -*) echo "$0: unknown option $1" >&2; echo "$usage" >&2; exit 1 ;;
        *) [[ -z "$data" ]] || { echo "$usage" >&2; exit 1; }; data=$1 ;;
    esac
    shift
done
[[ -n "$data" ]] || { echo "$usage" >&2; exit 1; }
[[ -d "$data" ]] || dd_die "no such directory $data"
for f in spk2utt utt2spk; do
    [[ -f "$data/$f" ]] || dd_die "no such file $data/$f"
    [[ -s "$data/$f" ]] || dd_die "empty file $data/$f"
done

# fields(<file> <count> <what>): every line has exactly that many fields
fields() {
    awk -v me="$dd_name" -v f="$1" -v n="$2" -v what="$3" \
        'NF != n { printf "%s: %s line %d: expected \"%s\", got \"%s\"\n", me, f, FNR, what, $0 > "/dev/stderr"; exit 1 }' "$1" \
        || exit 1
}

fields "$data/utt2spk" 2 "<utt> <spk>"
if [[ "$(wc -l < "$data/spk2utt")" -eq 1 ]]; then
    echo "$0: WARNING: you have only one speaker. This is probably a bad idea (see 'bold' in http://kaldi-asr.org/doc/data_prep.html)"
fi
dd_sorted_unique "$data/utt2spk"
[[ "$no_spk_sort" == true ]] || dd_spk_sorted "$data/utt2spk"
dd_sorted_unique "$data/spk2utt"
awk -v me="$dd_name" -v f="$data/spk2utt" \
    'NF < 2 { printf "%s: %s line %d: expected \"<spk> <utt> ...\", got \"%s\"\n", me, f, FNR, $0 > "/dev/stderr"; exit 1 }' \
    "$data/spk2utt" || exit 1
# spk2utt lists each utterance once, under its utt2spk speaker (in utt2spk's order unless --no-spk-sort)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$(dirname "${BASH_SOURCE[0]}")/spk2utt_to_utt2spk.pl" "$data/spk2utt" > "$tmp/utt2spk"
[[ "$no_spk_sort" == false ]] || sort "$tmp/utt2spk" -o "$tmp/utt2spk"
if ! cmp -s <(awk '{ print $1, $2 }' "$data/utt2spk") "$tmp/utt2spk"; then
    awk -v me="$dd_name" -v f="$data/spk2utt" -v u="$data/utt2spk" '
    FNR == NR { spk[$1] = $2; line[$1] = FNR; next }
    { for (i = 2; i <= NF; i++) {
        if (!($i in spk)) { printf "%s: %s line %d: utterance %s is not in %s\n", me, f, FNR, $i, u > "/dev/stderr"; bad = 1; exit 1 }
        if (spk[$i] != $1) { printf "%s: %s line %d: utterance %s is under speaker %s, but %s says %s\n", me, f, FNR, $i, $1, u, spk[$i] > "/dev/stderr"; bad = 1; exit 1 }
        if ($i in seen) { printf "%s: %s line %d: utterance %s again\n", me, f, FNR, $i > "/dev/stderr"; bad = 1; exit 1 }
        seen[$i] = 1
      } }
    END {
        if (bad) exit 1
        for (utt in spk) if (!(utt in seen) && (first == "" || line[utt] < line[first])) first = utt
        if (first != "") { printf "%s: %s line %d: utterance %s is not in %s\n", me, u, line[first], first, f > "/dev/stderr"; exit 1 }
    }' "$data/utt2spk" "$data/spk2utt" || exit 1
    dd_die "$data/spk2utt: its utterances are not in the order of $data/utt2spk (remake it:" \
           "utils/utt2spk_to_spk2utt.pl $data/utt2spk > $data/spk2utt)"
fi
awk '{ print $1 }' "$data/utt2spk" > "$tmp/utts"

if [[ ! -f "$data/text" && "$no_text" == false ]]; then
    dd_die "no such file $data/text (if this is by design, specify --no-text)"
fi
if [[ "$no_text" == false ]]; then
    if [[ "$non_print" == false ]]; then
        bad=$(LC_ALL=C.UTF-8 grep -n -m 1 '[^[:print:][:space:]]' "$data/text" | cut -d: -f1 || true)
        if [[ -n "$bad" ]]; then
            count=$(LC_ALL=C.UTF-8 grep -c '[^[:print:][:space:]]' "$data/text" || true)
            dd_die "$data/text line ${bad}: a non-printable character ($count lines have one; --non-print allows them)"
        fi
    fi
    [[ -s "$data/text" ]] || dd_die "empty file $data/text"
    # Kaldi's validate_text.pl: no CR; no white space but tab and space (UTF-8: U+0085, U+00A0, U+1680,
    # U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000; ASCII vertical tab and form feed)
    awk -v me="$dd_name" -v f="$data/text" '
    /\r/ { printf "%s: %s line %d: a CR (0x0D) character (utterance %s)\n", me, f, FNR, $1 > "/dev/stderr"; exit 1 }
    /[\013\014]|\302[\205\240]|\341\232\200|\342\200[\200-\212\250\251\257]|\342\201\237|\343\200\200/ {
        printf "%s: %s line %d: white space other than space and tab (utterance %s)\n", me, f, FNR, $1 > "/dev/stderr"; exit 1 }' \
        "$data/text" || exit 1
    dd_sorted_unique "$data/text"
    for sym in '<s>' '</s>' '#0'; do
        line=$(grep -n -m 1 -w -F -e "$sym" "$data/text" | cut -d: -f1 || true)
        [[ -z "$line" ]] || dd_die "$data/text line ${line}: the illegal symbol $sym (Kaldi's reserved word)"
    done
    dd_same_ids utterance "$data/utt2spk" "$data/text"
fi

if [[ -f "$data/segments" && ! -f "$data/wav.scp" ]]; then
    dd_die "in directory $data, segments file exists but no wav.scp"
fi
if [[ ! -f "$data/wav.scp" && "$no_wav" == false ]]; then
    dd_die "no such file $data/wav.scp (if this is by design, specify --no-wav)"
fi
# reco2file_and_channel: "<rec> <file> <A|B>" (1: a warning), indexed as <ids>
check_reco2file_and_channel() {
    [[ -f "$data/reco2file_and_channel" ]] || return 0
    dd_sorted_unique "$data/reco2file_and_channel"
    awk -v me="$dd_name" -v f="$data/reco2file_and_channel" '
    NF != 3 || ($3 != "A" && $3 != "B" && $3 != "1") {
        printf "%s: %s line %d: expected \"<recording> <file> <A|B>\", got \"%s\"\n", me, f, FNR, $0 > "/dev/stderr"; exit 1 }
    $3 == "1" { warn = 1 }
    END { if (warn) printf "%s: WARNING: %s: the channel should be marked as A or B, not 1\n", me, f }' \
        "$data/reco2file_and_channel" || exit 1
    dd_same_ids "$1" "$2" "$data/reco2file_and_channel"
}
if [[ -f "$data/wav.scp" ]]; then
    dd_sorted_unique "$data/wav.scp"
    line=$(grep -n -m 1 -E '^[^[:space:]]+[[:space:]]+~' "$data/wav.scp" | cut -d: -f1 || true)
    [[ -z "$line" ]] || dd_die "$data/wav.scp line ${line}: a path starting with ~ (give the full path: nothing expands ~ there)"
    if [[ -f "$data/segments" ]]; then
        dd_sorted_unique "$data/segments"
        awk -v me="$dd_name" -v f="$data/segments" '
        function number(x) { return x ~ /^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$|^[0-9]+\.$/ }
        NF != 4 || !number($3) || !(number($4) && $4 + 0 > $3 + 0 || $4 == "-1") {
            printf "%s: %s line %d: expected \"<utt> <recording> <start> <end>\" with end > start (or -1), got \"%s\"\n", me, f, FNR, $0 > "/dev/stderr"; exit 1 }' \
            "$data/segments" || exit 1
        [[ ! -f "$data/text" ]] || dd_same_ids utterance "$data/utt2spk" "$data/segments"
        awk '{ print $2 }' "$data/segments" | sort -u > "$tmp/recordings"
        dd_recordings "$data/segments" "$data/wav.scp"
        check_reco2file_and_channel recording "$tmp/recordings"
    else
        dd_same_ids utterance "$tmp/utts" "$data/wav.scp"
        check_reco2file_and_channel utterance "$tmp/utts"
    fi
fi

if [[ ! -f "$data/feats.scp" && "$no_feats" == false ]]; then
    dd_die "no such file $data/feats.scp (if this is by design, specify --no-feats)"
fi
if [[ -f "$data/feats.scp" ]]; then
    dd_sorted_unique "$data/feats.scp"
    dd_same_ids utterance "$tmp/utts" "$data/feats.scp"
fi
awk '{ print $1 }' "$data/spk2utt" > "$tmp/speakers"
if [[ -f "$data/cmvn.scp" ]]; then
    dd_sorted_unique "$data/cmvn.scp"
    dd_same_ids speaker "$tmp/speakers" "$data/cmvn.scp"
fi
if [[ -f "$data/spk2gender" ]]; then
    dd_sorted_unique "$data/spk2gender"
    awk -v me="$dd_name" -v f="$data/spk2gender" \
        'NF != 2 || ($2 != "m" && $2 != "f") { printf "%s: %s line %d: expected \"<spk> <m|f>\", got \"%s\"\n", me, f, FNR, $0 > "/dev/stderr"; exit 1 }' \
        "$data/spk2gender" || exit 1
    dd_same_ids speaker "$tmp/speakers" "$data/spk2gender"
fi
for pair in spk2warp:speakers:speaker utt2warp:utts:utterance; do
    IFS=: read -r f ids kind <<< "$pair"
    [[ -f "$data/$f" ]] || continue
    dd_sorted_unique "$data/$f"
    awk -v me="$dd_name" -v f="$data/$f" \
        'NF != 2 || !($2 > 0.5 && $2 < 1.5) { printf "%s: %s line %d: expected \"<id> <warp factor between 0.5 and 1.5>\", got \"%s\"\n", me, f, FNR, $0 > "/dev/stderr"; exit 1 }' \
        "$data/$f" || exit 1
    dd_same_ids "$kind" "$tmp/$ids" "$data/$f"
done
for f in vad.scp utt2lang utt2uniq; do
    [[ -f "$data/$f" ]] || continue
    dd_sorted_unique "$data/$f"
    dd_same_ids utterance "$tmp/utts" "$data/$f"
done
for pair in utt2dur:number utt2num_frames:whole; do
    IFS=: read -r f kind <<< "$pair"
    [[ -f "$data/$f" ]] || continue
    dd_sorted_unique "$data/$f"
    dd_same_ids utterance "$tmp/utts" "$data/$f"
    awk -v me="$dd_name" -v f="$data/$f" -v whole="$([[ $kind == whole ]] && echo 1 || echo 0)" '
    NF != 2 || !($2 ~ /^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$/ && $2 + 0 > 0) || (whole && $2 !~ /^[0-9]+$/) {
        printf "%s: %s line %d: expected \"<utt> <%s>\", got \"%s\"\n", me, f, FNR, whole ? "frames, a whole number > 0" : "seconds > 0", $0 > "/dev/stderr"; exit 1 }' \
        "$data/$f" || exit 1
done
if [[ -f "$data/reco2dur" ]]; then
    dd_sorted_unique "$data/reco2dur"
    if [[ -f "$tmp/recordings" ]]; then dd_same_ids recording "$tmp/recordings" "$data/reco2dur"
    else dd_same_ids recording "$tmp/utts" "$data/reco2dur"; fi
    awk -v me="$dd_name" -v f="$data/reco2dur" '
    NF != 2 || !($2 ~ /^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$/ && $2 + 0 > 0) {
        printf "%s: %s line %d: expected \"<recording> <seconds > 0>\", got \"%s\"\n", me, f, FNR, $0 > "/dev/stderr"; exit 1 }' \
        "$data/reco2dur" || exit 1
fi
echo "$0: Successfully validated data-directory $data"
