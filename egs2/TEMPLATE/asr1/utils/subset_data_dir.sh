#!/usr/bin/env bash
# Kaldi's utils/subset_data_dir.sh, without Kaldi:
#   subset_data_dir.sh [--speakers|--shortest|--first|--last|--per-spk] <srcdir> <num-utt> <destdir>
#   subset_data_dir.sh [--spk-list <speaker-list-file>] <srcdir> <destdir>
#   subset_data_dir.sh [--utt-list <utt-list-file>] <srcdir> <destdir>
# <num-utt> utterances of <srcdir>: by default spread evenly over utt2spk as Kaldi's subset_scp.pl picks them
# (halving the list recursively: the same utterances as Kaldi); --first/--last the first/last ones;
# --per-spk <num-utt> of each speaker, evenly spaced (as Kaldi); --shortest the shortest (by utt2num_frames
# as Kaldi's, else utt2dur; Kaldi's reads feats.scp, which needs Kaldi); --speakers whole speakers, shuffled,
# until <num-utt> utterances (a fixed shuffle, not the one Kaldi's Perl draws); --spk-list/--utt-list those
# listed. The utterance-, speaker- and recording-indexed files follow (segments, wav.scp, text, utt2dur,
# utt2num_frames, utt2uniq, utt2lang, feats.scp, vad.scp, utt2warp, spk2gender, cmvn.scp, spk2warp,
# reco2file_and_channel, reco2dur, stm), in the source's order; frame_shift is copied.
set -euo pipefail
dd_name=subset_data_dir.sh
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=data_dir_lib.sh
. "${here}/data_dir_lib.sh"
usage="Usage:
  $0 [--speakers|--shortest|--first|--last|--per-spk] <srcdir> <num-utt> <destdir>
  $0 [--spk-list <speaker-list-file>] <srcdir> <destdir>
  $0 [--utt-list <utt-list-file>] <srcdir> <destdir>
By default, selects <num-utt> utterances spread evenly over the data directory.
With --speakers, selects whole speakers (shuffled) until there are <num-utt> utterances
With --per-spk, selects <num-utt> utterances per speaker, if available.
With --first, selects the first <num-utt> utterances
With --last, selects the last <num-utt> utterances
With --shortest, selects the shortest <num-utt> utterances (utt2num_frames, else utt2dur).
With --spk-list, reads the speakers to keep from <speaker-list-file>
With --utt-list, reads the utterances to keep from <utt-list-file>"
mode=even list="" expect=3
case "${1:-}" in  # one option at most, first (as Kaldi's)
    --first|--last|--per-spk|--shortest|--speakers) mode=${1#--}; shift ;;
    --spk-list|--utt-list) mode=${1#--}; list=${2:-}; shift 2 || shift; expect=2 ;;
    --help|-h) echo "$usage"; exit 0 ;;
    -*) echo "$0: unknown option $1" >&2; echo "$usage" >&2; exit 1 ;;
esac
[[ $# -eq $expect ]] || { echo "$usage" >&2; exit 1; }
src=$1
if [[ $expect -eq 2 ]]; then
    dest=$2 numutt=""
    [[ -r "$list" ]] || dd_die "--${mode} ${list}: no such file"
else
    numutt=$2 dest=$3
    [[ "$numutt" =~ ^[0-9]+$ && "$numutt" -gt 0 ]] || dd_die "<num-utt> must be a whole number > 0, got '$numutt'"
    numutt=$((10#$numutt))
fi
[[ -f "$src/utt2spk" ]] || dd_die "no such file $src/utt2spk"
if [[ -n "$numutt" && "$numutt" -gt "$(wc -l < "$src/utt2spk")" ]]; then
    dd_die "cannot subset to more utterances than you originally had ($numutt > $(wc -l < "$src/utt2spk") in $src/utt2spk)"
fi
lengths=""
if [[ "$mode" == shortest ]]; then
    for f in utt2num_frames utt2dur; do [[ -f "$src/$f" ]] && { lengths="$src/$f"; break; }; done
    [[ -n "$lengths" ]] || dd_die "--shortest needs $src/utt2num_frames or $src/utt2dur (Kaldi's reads feats.scp with" \
                                   "Kaldi's feat-to-len, which is not here)"
fi
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
spk2utt="$src/spk2utt"
if [[ ! -f "$spk2utt" ]]; then "${here}/utt2spk_to_spk2utt.pl" "$src/utt2spk" > "$tmp/spk2utt"; spk2utt="$tmp/spk2utt"; fi

case "$mode" in
    spk-list)
        "${here}/filter_scp.pl" "$list" "$spk2utt" > "$dest/spk2utt"
        "${here}/spk2utt_to_utt2spk.pl" "$dest/spk2utt" > "$dest/utt2spk" ;;
    utt-list)
        "${here}/filter_scp.pl" "$list" "$src/utt2spk" > "$dest/utt2spk"
        "${here}/utt2spk_to_spk2utt.pl" "$dest/utt2spk" > "$dest/spk2utt" ;;
    speakers)  # whole speakers in a fixed shuffled order until numutt utterances are reached
        shuf --random-source=<(yes) "$spk2utt" | awk -v n="$numutt" '{ if (total < n) print; total += NF - 1 }' \
            | sort > "$dest/spk2utt"
        "${here}/spk2utt_to_utt2spk.pl" "$dest/spk2utt" > "$dest/utt2spk" ;;
    per-spk)  # numutt of each speaker, every skip-th, skip = max(1, floor(count / numutt))
        awk -v n="$numutt" '{
            count = NF - 1; skip = 1
            while (n * (skip + 1) <= count) skip++
            line = $1
            for (x = 2; x <= NF && x <= n * skip + 1; x += skip) line = line " " $x
            print line }' "$spk2utt" > "$dest/spk2utt"
        "${here}/spk2utt_to_utt2spk.pl" "$dest/spk2utt" > "$dest/utt2spk" ;;
    *)
        case "$mode" in
            first) head -n "$numutt" "$src/utt2spk" ;;
            last) tail -n "$numutt" "$src/utt2spk" ;;
            shortest)
                sort -n -k2 "$lengths" | awk '{ print $1 }' | head -n "$numutt" > "$tmp/uttlist"
                "${here}/filter_scp.pl" "$tmp/uttlist" "$src/utt2spk" ;;
            even)  # Kaldi's subset_scp.pl: halve the range, take half of the count (rounded down) from the first half
                awk -v n="$numutt" '
                function pick(start, end, need,   half) {
                    if (end - start == 1) { if (need > 0) print line[start]; return }
                    half = int((end - start) / 2)
                    pick(start, start + half, int(need / 2))
                    pick(start + half, end, need - int(need / 2))
                }
                { line[NR - 1] = $0 }
                END { pick(0, NR, n) }' "$src/utt2spk" ;;
        esac > "$dest/utt2spk"
        "${here}/utt2spk_to_spk2utt.pl" "$dest/utt2spk" > "$dest/spk2utt" ;;
esac

# the files that follow: by utterance, by speaker, by recording
for f in feats.scp vad.scp utt2lang utt2dur utt2num_frames utt2uniq wav.scp utt2warp text; do
    [[ ! -f "$src/$f" ]] || "${here}/filter_scp.pl" "$dest/utt2spk" "$src/$f" > "$dest/$f"
done
for f in spk2warp spk2gender cmvn.scp; do
    [[ ! -f "$src/$f" ]] || "${here}/filter_scp.pl" "$dest/spk2utt" "$src/$f" > "$dest/$f"
done
if [[ -f "$src/segments" ]]; then
    "${here}/filter_scp.pl" "$dest/utt2spk" "$src/segments" > "$dest/segments"
    awk '{ print $2 }' "$dest/segments" | sort -u > "$tmp/reco"
    [[ ! -f "$src/wav.scp" ]] || "${here}/filter_scp.pl" "$tmp/reco" "$src/wav.scp" > "$dest/wav.scp"
elif [[ -f "$dest/wav.scp" ]]; then
    awk '{ print $1 }' "$dest/wav.scp" | sort -u > "$tmp/reco"
else
    awk '{ print $1 }' "$dest/utt2spk" > "$tmp/reco"
fi
for f in reco2file_and_channel reco2dur; do
    [[ ! -f "$src/$f" ]] || "${here}/filter_scp.pl" "$tmp/reco" "$src/$f" > "$dest/$f"
done
if [[ -f "$src/stm" ]]; then  # the comment lines, then the kept recordings' lines
    { grep '^;;' "$src/stm" || true; "${here}/filter_scp.pl" "$tmp/reco" "$src/stm"; } > "$dest/stm"
fi
[[ ! -f "$src/frame_shift" ]] || cp "$src/frame_shift" "$dest/frame_shift"
echo "$0: reducing #utt from $(wc -l < "$src/utt2spk") to $(wc -l < "$dest/utt2spk")"
