#!/usr/bin/env bash
# Kaldi's utils/copy_data_dir.sh, without Kaldi:
#   copy_data_dir.sh [--utt-prefix <p>] [--utt-suffix <s>] [--spk-prefix <p>] [--spk-suffix <s>]
#                    [--validate-opts "<validate_data_dir.sh options>"] <srcdir> <destdir>
# Copies a Kaldi data directory, putting the prefixes and suffixes on the utterance and speaker ids (recording
# ids stay: with a segments file, wav.scp and reco2file_and_channel are copied as they are). Utterance-indexed:
# utt2spk, text, feats.scp, vad.scp, utt2dur, utt2num_frames, utt2lang, segments, wav.scp (without segments),
# reco2dur (without segments); speaker-indexed: spk2gender, cmvn.scp; utt2uniq maps the new ids to the
# original ones (made when the ids change); frame_shift, stm, glm, ctm are copied. The tables come out sorted
# (LC_ALL=C; Kaldi's keeps the source order, which a suffix can unsort). Files of <destdir> that <srcdir> has
# not go to <destdir>/.backup. It ends with validate_data_dir.sh (--no-feats, --no-text where those are
# missing). A line of an utterance-indexed file whose id is not in utt2spk stops it, naming the file and line.
set -euo pipefail
dd_name=copy_data_dir.sh
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=data_dir_lib.sh
. "${here}/data_dir_lib.sh"
spk_prefix=""
utt_prefix=""
spk_suffix=""
utt_suffix=""
validate_opts=""
help_message="Usage: $0 [options] <srcdir> <destdir>
e.g.: $0 --spk-prefix 1- --utt-prefix 1- data/train data/train_1
Options:
  --utt-prefix <prefix>   # prefix for utterance ids, default empty
  --utt-suffix <suffix>   # suffix for utterance ids, default empty
  --spk-prefix <prefix>   # prefix for speaker ids, default empty
  --spk-suffix <suffix>   # suffix for speaker ids, default empty
  --validate-opts <opts>  # options for validate_data_dir.sh"
# shellcheck source=parse_options.sh
. "${here}/parse_options.sh"
[[ $# -eq 2 ]] || { echo "$help_message" >&2; exit 1; }
src=$1 dest=$2
[[ -f "$src/utt2spk" ]] || dd_die "no such file $src/utt2spk"
[[ "$(cd "$src" && pwd -P)" != "$(mkdir -p "$dest" && cd "$dest" && pwd -P)" ]] \
    || dd_die "<srcdir> and <destdir> must be different ($src, $dest)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

awk -v p="$utt_prefix" -v s="$utt_suffix" '{ print $1, p $1 s }' "$src/utt2spk" > "$tmp/utt_map"
"${here}/utt2spk_to_spk2utt.pl" "$src/utt2spk" | awk -v p="$spk_prefix" -v s="$spk_suffix" '{ print $1, p $1 s }' \
    > "$tmp/spk_map"
# map <map> <what> <source file> <dest file> [<field>]: the field (default the first) through the map, sorted;
# the rest of each line as it is
map() {
    awk -v me="$dd_name" -v what="$2" -v f="$3" -v k="${5:-1}" '
    FNR == NR { to[$1] = $2; next }
    {
        if (!($k in to)) { printf "%s: %s line %d: %s %s is not in the source utt2spk\n", me, f, FNR, what, $k > "/dev/stderr"; exit 1 }
        if (k == 1) { rest = $0; sub(/^[ \t]*[^ \t]+/, "", rest); print to[$1] rest } else { $k = to[$k]; print }
    }' "$1" "$3" | sort > "$tmp/mapped" || exit 1
    mv "$tmp/mapped" "$4.tmp" && mv "$4.tmp" "$4"
}
map "$tmp/utt_map" utterance "$src/utt2spk" "$tmp/utt2spk"
map "$tmp/spk_map" speaker "$tmp/utt2spk" "$dest/utt2spk" 2
"${here}/utt2spk_to_spk2utt.pl" "$dest/utt2spk" > "$dest/spk2utt.tmp" && mv "$dest/spk2utt.tmp" "$dest/spk2utt"
if [[ -f "$src/utt2uniq" ]]; then
    map "$tmp/utt_map" utterance "$src/utt2uniq" "$dest/utt2uniq"
elif [[ -n "$utt_prefix$utt_suffix" ]]; then
    awk '{ print $2, $1 }' "$tmp/utt_map" | sort > "$dest/utt2uniq.tmp" && mv "$dest/utt2uniq.tmp" "$dest/utt2uniq"
fi
for f in feats.scp vad.scp text utt2dur utt2num_frames utt2lang; do
    [[ ! -f "$src/$f" ]] || map "$tmp/utt_map" utterance "$src/$f" "$dest/$f"
done
if [[ -f "$src/segments" ]]; then
    map "$tmp/utt_map" utterance "$src/segments" "$dest/segments"
    for f in wav.scp reco2dur; do [[ ! -f "$src/$f" ]] || cp "$src/$f" "$dest/$f"; done
else  # no segments: wav.scp is indexed by utterance
    for f in wav.scp reco2dur; do [[ ! -f "$src/$f" ]] || map "$tmp/utt_map" utterance "$src/$f" "$dest/$f"; done
fi
for f in spk2gender cmvn.scp; do
    [[ ! -f "$src/$f" ]] || map "$tmp/spk_map" speaker "$src/$f" "$dest/$f"
done
for f in reco2file_and_channel frame_shift stm glm ctm; do
    [[ ! -f "$src/$f" ]] || cp "$src/$f" "$dest/$f"
done
echo "$0: copied data from $src to $dest"
for f in feats.scp cmvn.scp vad.scp utt2lang utt2uniq utt2dur utt2num_frames text wav.scp reco2file_and_channel \
        segments reco2dur spk2gender frame_shift stm glm ctm; do
    if [[ -f "$dest/$f" && ! -f "$src/$f" ]]; then
        [[ "$f" == utt2uniq && -n "$utt_prefix$utt_suffix" ]] && continue  # made above
        echo "$0: file $f exists in dest $dest but not in src $src. Moving it to $dest/.backup/$f"
        mkdir -p "$dest/.backup"
        mv "$dest/$f" "$dest/.backup/"
    fi
done
read -r -a opts <<< "$validate_opts"
[[ -f "$src/feats.scp" ]] || opts+=(--no-feats)
[[ -f "$src/text" ]] || opts+=(--no-text)
"${here}/validate_data_dir.sh" "${opts[@]}" "$dest"
