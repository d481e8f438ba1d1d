#!/usr/bin/env bash
# Kaldi's utils/combine_data.sh, without Kaldi:
#   combine_data.sh [--extra-files "<file> ..."] [--skip-fix true|false] <dest-data-dir> <src-data-dir> ...
# Makes <dest-data-dir> anew from the source directories: each of utt2spk, utt2lang, utt2dur, utt2num_frames,
# reco2dur, feats.scp, text, cmvn.scp, vad.scp, reco2file_and_channel, wav.scp, spk2gender and the
# --extra-files that every source has is concatenated and sorted (LC_ALL=C); one that only some have is left
# out, and said so. utt2uniq and segments are made where missing when some source has them (utt2uniq: each
# utterance its own; segments: "<utt> <utt> 0 <duration>" from the source's utt2dur, which a source without
# segments then needs; Kaldi's reads the audio for it). spk2utt is remade, then fix_data_dir.sh runs unless
# --skip-fix true.
set -euo pipefail
dd_name=combine_data.sh
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=data_dir_lib.sh
. "${here}/data_dir_lib.sh"
extra_files=""
skip_fix=false
help_message="Usage: $0 [--extra-files '<file> ...'] [--skip-fix true|false] <dest-data-dir> <src-data-dir1> <src-data-dir2> ...
Note, files that don't appear in all source dirs will not be combined, with the exception of utt2uniq and
segments, which are created where necessary."
echo "$0 $*"  # the command line, for the log (Kaldi's)
# shellcheck source=parse_options.sh
. "${here}/parse_options.sh"
[[ $# -ge 2 ]] || { echo "$help_message" >&2; exit 1; }
dest=$1
shift
srcs=("$@")
for dir in "${srcs[@]}"; do
    [[ -f "$dir/utt2spk" ]] || dd_die "no such file $dir/utt2spk"
    [[ ! -d "$dest" || "$(cd "$dir" && pwd -P)" != "$(cd "$dest" && pwd -P)" ]] \
        || dd_die "the destination $dest is also a source (it is made anew: give another directory)"
done
rm -rf "$dest"
mkdir -p "$dest"
read -r -a extra <<< "${extra_files//utt2uniq/}"  # utt2uniq is combined anyway

# utt2uniq and segments: made for a source without them when another source has them
has() { local d; for d in "${srcs[@]}"; do [[ -f "$d/$1" ]] && return 0; done; return 1; }
if has utt2uniq; then
    for dir in "${srcs[@]}"; do
        if [[ -f "$dir/utt2uniq" ]]; then cat "$dir/utt2uniq"; else awk '{ print $1, $1 }' "$dir/utt2spk"; fi
    done | sort -k1 > "$dest/utt2uniq"
    echo "$0: combined utt2uniq"
else
    echo "$0 [info]: not combining utt2uniq as it does not exist"
fi
if has segments; then
    for dir in "${srcs[@]}"; do
        if [[ -f "$dir/segments" ]]; then cat "$dir/segments"; continue; fi
        [[ -f "$dir/utt2dur" ]] || dd_die "$dir has no segments file and no utt2dur to make one from (other sources" \
            "have segments): write $dir/utt2dur (\"<utt> <seconds>\" lines)"
        echo "$0 [info]: will generate missing segments for $dir" >&2
        awk '{ print $1, $1, 0, $2 }' "$dir/utt2dur"
    done | sort -k1 > "$dest/segments"
    echo "$0: combined segments"
else
    echo "$0 [info]: not combining segments as it does not exist"
fi
for file in utt2spk utt2lang utt2dur utt2num_frames reco2dur feats.scp text cmvn.scp vad.scp \
        reco2file_and_channel wav.scp spk2gender "${extra[@]}"; do
    everywhere=true
    for dir in "${srcs[@]}"; do [[ -f "$dir/$file" ]] || everywhere=false; done
    if [[ "$everywhere" == true ]]; then
        for dir in "${srcs[@]}"; do cat "$dir/$file"; done | sort -k1 > "$dest/$file"
        echo "$0: combined $file"
    elif has "$file"; then
        echo "$0 [info]: **not combining $file as it does not exist everywhere**"
    else
        echo "$0 [info]: not combining $file as it does not exist"
    fi
done
"${here}/utt2spk_to_spk2utt.pl" "$dest/utt2spk" > "$dest/spk2utt"
[[ "$skip_fix" == true ]] || "${here}/fix_data_dir.sh" "$dest"
