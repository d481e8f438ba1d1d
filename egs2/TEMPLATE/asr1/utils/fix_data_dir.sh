#!/usr/bin/env bash
# Kaldi's utils/fix_data_dir.sh, without Kaldi:
#   fix_data_dir.sh [--utt-extra-files "<file> ..."] [--spk-extra-files "<file> ..."] <data-dir>
# Sorts every table of a Kaldi data directory by its first field (LC_ALL=C sort, duplicates dropped, each file
# named as it is sorted) and keeps only the utterances present in all of utt2spk, text, segments, feats.scp,
# utt2lang and wav.scp (when there is no segments file; with one, the recordings of both), and the speakers
# present in cmvn.scp and spk2gender; then filters utt2uniq, vad.scp, utt2dur, utt2num_frames, the
# --utt-extra-files (and --spk-extra-files) to them (reco2dur too, which Kaldi's leaves) and remakes spk2utt. It says how many utterances it kept
# ("fix_data_dir.sh: kept N utterances out of M") and which files lost lines; the old files go to
# <data-dir>/.backup. As Kaldi's, it needs speaker ids that are prefixes of the utterance ids (utt2spk sorted
# by speaker too), and stops when no utterance is left.
set -euo pipefail
dd_name=fix_data_dir.sh
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=data_dir_lib.sh
. "${here}/data_dir_lib.sh"
utt_extra_files=""
spk_extra_files=""
help_message="Usage: $0 [--utt-extra-files \"<file> ...\"] [--spk-extra-files \"<file> ...\"] <data-dir>
e.g.: $0 data/train
Sorts and filters the files of a data directory so that they hold the same utterances (and speakers)."
# shellcheck source=parse_options.sh
. "${here}/parse_options.sh"
[[ $# -eq 1 ]] || { echo "$help_message" >&2; exit 1; }
data=$1
[[ -d "$data" ]] || dd_die "no such directory $data"
[[ -f "$data/utt2spk" ]] || dd_die "no such file $data/utt2spk"
read -r -a utt_extra <<< "$utt_extra_files"
read -r -a spk_extra <<< "$spk_extra_files"
mkdir -p "$data/.backup"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

replace() {  # replace <file> <new content file>: atomically
    mv "$2" "$1.tmp.$$" && mv "$1.tmp.$$" "$1"
}
for x in utt2spk spk2utt feats.scp text segments wav.scp cmvn.scp vad.scp reco2file_and_channel spk2gender \
        utt2lang utt2uniq utt2dur utt2num_frames reco2dur "${utt_extra[@]}" "${spk_extra[@]}"; do
    [[ -f "$data/$x" ]] || continue
    cp "$data/$x" "$data/.backup/$x"
    sort -k1,1 -u "$data/$x" > "$tmp/sorted"
    if ! cmp -s "$data/$x" "$tmp/sorted"; then
        echo "$0: file $data/$x is not in sorted order or not unique, sorting it"
        replace "$data/$x" "$tmp/sorted"
    fi
done
awk -v me="$dd_name" -v f="$data/utt2spk" \
    'NF != 2 { printf "%s: %s line %d: expected \"<utt> <spk>\", got \"%s\"\n", me, f, FNR, $0 > "/dev/stderr"; exit 1 }' \
    "$data/utt2spk" || exit 1
dd_spk_sorted "$data/utt2spk"

filter() {  # filter <ids> <what the ids are> <file> [<field>]: keep the lines of <file> whose field is in <ids>
    local before after
    "${here}/filter_scp.pl" -f "${4:-1}" "$1" "$3" > "$tmp/filtered"
    if ! cmp -s "$3" "$tmp/filtered"; then
        before=$(wc -l < "$3") after=$(wc -l < "$tmp/filtered")
        echo "$0: filtered $3 from ${before} to ${after} lines based on $2."
        replace "$3" "$tmp/filtered"
    fi
}
filter_recordings() {  # with segments: the recordings in both segments and wav.scp
    local x
    [[ -f "$data/segments" ]] || return 0
    [[ -f "$data/wav.scp" ]] || dd_die "$data/segments exists but not $data/wav.scp"
    awk '{ print $2 }' "$data/segments" | sort -u > "$tmp/recordings.all"
    "${here}/filter_scp.pl" "$data/wav.scp" "$tmp/recordings.all" > "$tmp/recordings"
    [[ -s "$tmp/recordings" ]] || dd_die "no recording of $data/segments is in $data/wav.scp"
    filter "$tmp/recordings" "the recordings of both segments and wav.scp" "$data/segments" 2
    filter "$tmp/recordings" "the recordings of both segments and wav.scp" "$data/wav.scp"
    for x in reco2file_and_channel reco2dur; do
        [[ ! -f "$data/$x" ]] || filter "$tmp/recordings" "the recordings of both segments and wav.scp" "$data/$x"
    done
}
filter_speakers() {  # utt2spk is primary and spk2utt derived; the speakers of cmvn.scp and spk2gender too
    local x
    "${here}/utt2spk_to_spk2utt.pl" "$data/utt2spk" > "$tmp/spk2utt" && replace "$data/spk2utt" "$tmp/spk2utt"
    awk '{ print $1 }' "$data/spk2utt" > "$tmp/speakers"
    for x in cmvn.scp spk2gender; do
        [[ ! -f "$data/$x" ]] || { "${here}/filter_scp.pl" "$data/$x" "$tmp/speakers" > "$tmp/s"; mv "$tmp/s" "$tmp/speakers"; }
    done
    filter "$tmp/speakers" "the speakers kept" "$data/spk2utt"
    "${here}/spk2utt_to_utt2spk.pl" "$data/spk2utt" > "$tmp/utt2spk" && replace "$data/utt2spk" "$tmp/utt2spk"
    for x in cmvn.scp spk2gender "${spk_extra[@]}"; do
        [[ ! -f "$data/$x" ]] || filter "$tmp/speakers" "the speakers kept" "$data/$x"
    done
}
filter_utts() {  # the utterances in every utterance-indexed file
    local x wav=() before after
    [[ -f "$data/segments" ]] || wav=(wav.scp)  # wav.scp (and reco2dur) are indexed by utterance without segments
    awk '{ print $1 }' "$data/utt2spk" > "$tmp/utts"
    for x in feats.scp text segments utt2lang "${wav[@]}"; do
        [[ ! -f "$data/$x" ]] || { "${here}/filter_scp.pl" "$data/$x" "$tmp/utts" > "$tmp/u"; mv "$tmp/u" "$tmp/utts"; }
    done
    [[ -s "$tmp/utts" ]] || dd_die "no utterances remained: not proceeding further."
    before=$(wc -l < "$data/utt2spk") after=$(wc -l < "$tmp/utts")
    if [[ "$after" -ne "$before" ]]; then
        echo "fix_data_dir.sh: kept ${after} utterances out of ${before}"
    else
        echo "fix_data_dir.sh: kept all ${before} utterances."
    fi
    for x in utt2spk utt2uniq feats.scp vad.scp text segments utt2lang utt2dur utt2num_frames "${wav[@]}" \
            ${wav:+reco2dur} "${utt_extra[@]}"; do
        [[ ! -f "$data/$x" ]] || filter "$tmp/utts" "the utterances kept" "$data/$x"
    done
}
filter_recordings
filter_speakers
filter_utts
filter_speakers
filter_recordings
"${here}/utt2spk_to_spk2utt.pl" "$data/utt2spk" > "$tmp/spk2utt" && replace "$data/spk2utt" "$tmp/spk2utt"
echo "fix_data_dir.sh: old files are kept in $data/.backup"
