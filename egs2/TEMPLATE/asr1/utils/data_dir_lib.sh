# shellcheck shell=bash
# Checks shared by the Kaldi data-dir tools here (validate_data_dir.sh, fix_data_dir.sh, ...): each stops with
# one line that names the file and line at fault. The caller sets dd_name (its name in messages). C locale:
# Kaldi's sort order, byte by byte ('A' < 'B' < '_' < 'a').
export LC_ALL=C
dd_die() { echo "${dd_name}: $*" >&2; exit 1; }

# dd_sorted_unique <file>: the first fields strictly increase (sorted as LC_ALL=C sort, no duplicates); the
# file ends with a newline
dd_sorted_unique() {
    [[ ! -s "$1" || "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" == '\n' ]] \
        || dd_die "$1: its last line has no newline at its end"
    awk -v me="$dd_name" -v f="$1" '
    NF == 0 { printf "%s: %s line %d: an empty line\n", me, f, FNR > "/dev/stderr"; exit 1 }
    {
        k = $1 ""
        if (FNR > 1 && k == prev) { printf "%s: %s line %d: %s again (ids must be unique)\n", me, f, FNR, k > "/dev/stderr"; exit 1 }
        if (FNR > 1 && k < prev) { printf "%s: %s line %d: %s after %s: not in sorted order (LC_ALL=C sort)\n", me, f, FNR, k, prev > "/dev/stderr"; exit 1 }
        prev = k
    }' "$1" || exit 1
}

# dd_same_ids <kind> <file A> <file B> [<field of B>]: the ids of A (first fields) are those of B (its given
# field, default the first); both sorted and unique
dd_same_ids() {
    cmp -s <(awk '{ print $1 }' "$2") <(awk -v k="${4:-1}" '{ print $k }' "$3") && return 0
    awk -v me="$dd_name" -v kind="$1" -v a="$2" -v b="$3" -v k="${4:-1}" '
    FILENAME == a && FNR == NR { in_a[$1] = FNR; next }
    { if (!($k in in_a)) { printf "%s: %s line %d: %s %s is not in %s\n", me, b, FNR, kind, $k, a > "/dev/stderr"; bad = 1; exit 1 }
      in_b[$k] = 1 }
    END {
        if (bad) exit 1
        for (id in in_a) if (!(id in in_b) && (first == "" || in_a[id] < in_a[first])) first = id
        if (first != "") { printf "%s: %s line %d: %s %s has no line in %s\n", me, a, in_a[first], kind, first, b > "/dev/stderr"; exit 1 }
    }' "$2" "$3" || exit 1
}

# dd_spk_sorted <utt2spk>: also in order when sorted on the speaker (LC_ALL=C sort -k2: the rest of the line
# from the second field, then the whole line), as when speaker ids are prefixes of utterance ids; or stop
# naming the first line out of order
dd_spk_sorted() {
    sort -C -k2 "$1" && return 0
    awk -v me="$dd_name" -v f="$1" '
    {
        key = $0; sub(/^[ \t]*[^ \t]+/, "", key); line = $0 ""
        if (FNR > 1 && (key < prev_key || (key == prev_key && line < prev_line))) {
            printf "%s: %s line %d: speaker %s after %s: utt2spk is not in sorted order when sorted first on speaker-id (make speaker-ids prefixes of utt-ids", me, f, FNR, $2, prev_spk > "/dev/stderr"
            printf "%s)\n", (me == "validate_data_dir.sh" ? ", or give --no-spk-sort" : "") > "/dev/stderr"
            exit 1
        }
        prev_key = key; prev_line = line; prev_spk = $2
    }' "$1" || exit 1
    dd_die "$1 is not in sorted order when sorted first on speaker-id"
}

# dd_recordings <segments> <wav.scp>: each segment's recording is in wav.scp, and each recording of wav.scp
# has a segment
dd_recordings() {
    awk -v me="$dd_name" -v s="$1" -v w="$2" '
    FILENAME == w && FNR == NR { line[$1] = FNR; next }
    { if (!($2 in line)) { printf "%s: %s line %d: recording %s is not in %s\n", me, s, FNR, $2, w > "/dev/stderr"; bad = 1; exit 1 }
      used[$2] = 1 }
    END {
        if (bad) exit 1
        for (r in line) if (!(r in used) && (first == "" || line[r] < line[first])) first = r
        if (first != "") { printf "%s: %s line %d: recording %s has no segment in %s\n", me, w, line[first], first, s > "/dev/stderr"; exit 1 }
    }' "$2" "$1" || exit 1
}
