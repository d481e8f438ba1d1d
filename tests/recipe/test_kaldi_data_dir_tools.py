"""Kaldi's data-dir tools in the template's utils/ (what every ESPnet local/data.sh calls), written here without
Kaldi or Perl, against the behaviour Kaldi's own scripts have: LC_ALL=C order ('A' < 'B' < '_' < 'a'), Kaldi's
messages and selections, and one line naming the file and line at fault. Also parse_options.sh leaving the
positional arguments to its caller, and an ESPnet-style local/data.sh run by the recipe's stage 1."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, recipe_from_template

UTILS = REPO / "egs2" / "TEMPLATE" / "asr1" / "utils"


def tool(name, *args, cwd=None, stdin=None):
    return subprocess.run([str(UTILS / name), *map(str, args)], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=30)


def write_dir(path: Path, **files) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name.replace("_scp", ".scp")).write_text(text)
    return path


def ids(path: Path) -> list:
    return [line.split()[0] for line in path.read_text().splitlines()]


# ids in C order: A B _ a (a Unicode-aware sort puts them _ a A B, or A a B _)
UTT2SPK = "a-1 a\nA-1 A\nB-2 B\n_-1 _\nB-1 B\n"


def test_utt2spk_spk2utt_in_kaldis_order(tmp_path):
    spk2utt = tool("utt2spk_to_spk2utt.pl", stdin=UTT2SPK)
    assert spk2utt.returncode == 0
    assert spk2utt.stdout == "a a-1\nA A-1\nB B-2 B-1\n_ _-1\n"  # first-appearance order, as Kaldi's
    back = tool("spk2utt_to_utt2spk.pl", stdin=spk2utt.stdout)
    assert back.stdout == "a-1 a\nA-1 A\nB-2 B\nB-1 B\n_-1 _\n"
    (tmp_path / "utt2spk").write_text("u1 s1\nu2 s2 extra\n")
    bad = tool("utt2spk_to_spk2utt.pl", tmp_path / "utt2spk")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr == f'utt2spk_to_spk2utt.pl: {tmp_path}/utt2spk line 2: expected "<utt> <spk>", got "u2 s2 extra"\n'
    bad = tool("spk2utt_to_utt2spk.pl", stdin="s1 u1\ns2\n")
    assert bad.returncode == 1
    assert bad.stderr == 'spk2utt_to_utt2spk.pl: standard input line 2: expected "<spk> <utt> ...", got "s2"\n'


def test_filter_scp_keeps_the_lines_whose_field_is_listed(tmp_path):
    (tmp_path / "list").write_text("foo\nbaz x y\n")
    scp = "bar 2 foo\nfoo 1 baz\n  baz 3 bar\n"
    assert tool("filter_scp.pl", tmp_path / "list", stdin=scp).stdout == "foo 1 baz\n  baz 3 bar\n"  # bytes kept
    assert tool("filter_scp.pl", "--exclude", tmp_path / "list", stdin=scp).stdout == "bar 2 foo\n"
    assert tool("filter_scp.pl", "-f", "3", tmp_path / "list", stdin=scp).stdout == "bar 2 foo\nfoo 1 baz\n"
    assert tool("filter_scp.pl", "--exclude", "-f", "3", tmp_path / "list", stdin=scp).stdout == "  baz 3 bar\n"
    (tmp_path / "in.scp").write_text(scp)
    assert tool("filter_scp.pl", tmp_path / "list", tmp_path / "in.scp").stdout == "foo 1 baz\n  baz 3 bar\n"
    short = tool("filter_scp.pl", "-f", "3", tmp_path / "list", stdin="bar 2 foo\nfoo 1\n")
    assert short.returncode == 1 and short.stderr == 'filter_scp.pl: standard input line 2: no field 3 in "foo 1"\n'
    assert "unknown option --exclude-all" in tool("filter_scp.pl", "--exclude-all", tmp_path / "list").stderr


def test_fix_data_dir_sorts_in_c_order_and_keeps_the_utterances_of_every_file(tmp_path):
    data = write_dir(tmp_path / "data" / "train", utt2spk=UTT2SPK,
                     text="a-1 x\nA-1 y\nB-1 z\n_-1 w\nZ-9 orphan\n",          # B-2 has no text
                     wav_scp="_-1 /w.wav\nA-1 /a.wav\na-1 /b.wav\nB-1 /c.wav\nB-2 /d.wav\n",
                     utt2dur="A-1 1.0\nB-1 2.0\nB-2 3.0\n_-1 4.0\na-1 5.0\n")
    result = tool("fix_data_dir.sh", "data/train", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "fix_data_dir.sh: kept 4 utterances out of 5" in lines
    assert lines[-1] == "fix_data_dir.sh: old files are kept in data/train/.backup"
    assert any(line.endswith("file data/train/utt2spk is not in sorted order or not unique, sorting it") for line in lines)
    assert any(line.endswith("filtered data/train/text from 5 to 4 lines based on the utterances kept.") for line in lines)
    assert (data / "utt2spk").read_text() == "A-1 A\nB-1 B\n_-1 _\na-1 a\n"
    assert (data / "spk2utt").read_text() == "A A-1\nB B-1\n_ _-1\na a-1\n"
    assert (data / "text").read_text() == "A-1 y\nB-1 z\n_-1 w\na-1 x\n"
    assert ids(data / "wav.scp") == ids(data / "utt2dur") == ["A-1", "B-1", "_-1", "a-1"]
    assert (data / ".backup" / "text").read_text().endswith("Z-9 orphan\n")  # the originals
    assert tool("validate_data_dir.sh", "--no-feats", data).returncode == 0
    again = tool("fix_data_dir.sh", data)
    assert "fix_data_dir.sh: kept all 4 utterances." in again.stdout.splitlines()


def test_fix_data_dir_with_segments_keeps_the_recordings_of_both(tmp_path):
    data = write_dir(tmp_path / "d", utt2spk="s1-a s1\ns1-b s1\ns2-c s2\n", text="s1-a x\ns1-b y\ns2-c z\n",
                     segments="s1-a r1 0 1.5\ns1-b r1 1.5 -1\ns2-c r9 0 1\n", wav_scp="r1 /r1.wav\nr2 /r2.wav\n")
    result = tool("fix_data_dir.sh", data)
    assert result.returncode == 0, result.stderr
    assert "fix_data_dir.sh: kept 2 utterances out of 3" in result.stdout
    assert (data / "wav.scp").read_text() == "r1 /r1.wav\n"  # r2 has no segment, r9 no audio
    assert (data / "segments").read_text() == "s1-a r1 0 1.5\ns1-b r1 1.5 -1\n"
    assert (data / "spk2utt").read_text() == "s1 s1-a s1-b\n"
    assert tool("validate_data_dir.sh", "--no-feats", data).returncode == 0


def test_fix_data_dir_needs_speaker_ids_as_prefixes_and_some_utterance_left(tmp_path):
    data = write_dir(tmp_path / "d", utt2spk="u1 s2\nu2 s1\n", text="u1 x\nu2 y\n", wav_scp="u1 /a\nu2 /b\n")
    result = tool("fix_data_dir.sh", data)
    assert result.returncode == 1
    assert result.stderr == (f"fix_data_dir.sh: {data}/utt2spk line 2: speaker s1 after s2: utt2spk is not in sorted "
                             "order when sorted first on speaker-id (make speaker-ids prefixes of utt-ids)\n")
    data = write_dir(tmp_path / "e", utt2spk="s-1 s\n", text="s-2 x\n")
    result = tool("fix_data_dir.sh", data)
    assert result.returncode == 1 and result.stderr == "fix_data_dir.sh: no utterances remained: not proceeding further.\n"
    assert "options must be of the form --name value, got '--utt-extra-files=x'" in \
        tool("fix_data_dir.sh", "--utt-extra-files=x", data).stderr


def test_fix_data_dir_filters_the_extra_files(tmp_path):
    data = write_dir(tmp_path / "d", utt2spk="s-1 s\ns-2 s\n", text="s-1 x\n", wav_scp="s-1 /a\ns-2 /b\n",
                     **{"text.prev": "s-2 q\ns-1 p\n"})
    result = tool("fix_data_dir.sh", "--utt_extra_files", "text.prev", data)  # ESPnet's asr.sh spelling
    assert result.returncode == 0, result.stderr
    assert (data / "text.prev").read_text() == "s-1 p\n"


GOOD = dict(utt2spk="A-1 A\nB-1 B\n_-1 _\na-1 a\n", spk2utt="A A-1\nB B-1\n_ _-1\na a-1\n",
            text="A-1 x\nB-1 y\n_-1 z\na-1 w\n", wav_scp="A-1 /a.wav\nB-1 /b.wav\n_-1 /c.wav\na-1 /d.wav\n")


@pytest.mark.parametrize(
    "changes, options, message",
    [
        (dict(text="A-1 x\n_-1 z\nB-1 y\na-1 w\n"), [], "text line 3: B-1 after _-1: not in sorted order (LC_ALL=C sort)"),
        (dict(text="A-1 x\nA-1 x\nB-1 y\n_-1 z\na-1 w\n"), [], "text line 2: A-1 again (ids must be unique)"),
        (dict(text="A-1 x\nB-1 y\n_-1 z\n"), [], "utt2spk line 4: utterance a-1 has no line in {d}/text"),
        (dict(text="A-1 x\nB-1 y\nC-1 v\n_-1 z\na-1 w\n"), [], "text line 3: utterance C-1 is not in {d}/utt2spk"),
        (dict(text="A-1 x\nB-1 y <s>\n_-1 z\na-1 w\n"), [], "text line 2: the illegal symbol <s> (Kaldi's reserved word)"),
        (dict(text="A-1 x\nB-1 y\r\n_-1 z\na-1 w\n"), [], "text line 2: a CR (0x0D) character (utterance B-1)"),
        (dict(text="A-1 x\nB-1 y\n_-1 z\u00a0q\na-1 w\n"), ["--non-print"],
         "text line 3: white space other than space and tab (utterance _-1)"),
        (dict(text="A-1 x\nB-1 \x07y\n_-1 z\na-1 w\n"), [],
         "text line 2: a non-printable character (1 lines have one; --non-print allows them)"),
        (dict(text="A-1 x\nB-1 y\n_-1 z\na-1 w"), [], "{d}/text: its last line has no newline at its end"),
        (dict(spk2utt="A A-1\nB B-1\n_ a-1\na _-1\n"), [],
         "spk2utt line 3: utterance a-1 is under speaker _, but {d}/utt2spk says a"),
        (dict(utt2spk="A-1 A\nB-1 B\n_-1 a\na-1 _\n", spk2utt="A A-1\nB B-1\n_ a-1\na _-1\n"), [],
         "utt2spk line 4: speaker _ after a: utt2spk is not in sorted order when sorted first on speaker-id (make "
         "speaker-ids prefixes of utt-ids, or give --no-spk-sort)"),
        (dict(wav_scp="A-1 /a.wav\nB-1 ~/b.wav\n_-1 /c.wav\na-1 /d.wav\n"), [],
         "wav.scp line 2: a path starting with ~ (give the full path: nothing expands ~ there)"),
        (dict(wav_scp="r1 /r1.wav\nr2 /r2.wav\n", segments="A-1 r1 0 1\nB-1 r1 1 2\n_-1 r1 2 3\na-1 r3 0 1\n"), [],
         "segments line 4: recording r3 is not in {d}/wav.scp"),
        (dict(wav_scp="r1 /r1.wav\nr2 /r2.wav\n", segments="A-1 r1 0 1\nB-1 r1 1 2\n_-1 r1 2 3\na-1 r1 3 4\n"), [],
         "wav.scp line 2: recording r2 has no segment in {d}/segments"),
        (dict(wav_scp="r1 /r1.wav\n", segments="A-1 r1 0 1\nB-1 r1 2 1\n_-1 r1 2 3\na-1 r1 3 -1\n"), [],
         'segments line 2: expected "<utt> <recording> <start> <end>" with end > start (or -1), got "B-1 r1 2 1"'),
        (dict(utt2dur="A-1 1\nB-1 0\n_-1 1\na-1 1\n"), [], 'utt2dur line 2: expected "<utt> <seconds > 0>", got "B-1 0"'),
        (dict(spk2gender="A m\nB x\n_ f\na m\n"), [], 'spk2gender line 2: expected "<spk> <m|f>", got "B x"'),
        (dict(text=None), [], "no such file {d}/text (if this is by design, specify --no-text)"),
        (dict(), ["--no-wav"], "no such file {d}/feats.scp (if this is by design, specify --no-feats)"),
    ],
)
def test_validate_data_dir_names_the_file_and_line_at_fault(tmp_path, changes, options, message):
    files = {**GOOD, **changes}
    d = write_dir(tmp_path / "d", **{k: v for k, v in files.items() if v is not None})
    options = options or ["--no-feats"]
    result = tool("validate_data_dir.sh", *options, d)
    assert result.returncode == 1, result.stdout
    expected = message.format(d=d)
    expected = expected if expected.startswith(("no such", str(d))) else f"{d}/{expected}"
    assert result.stderr == f"validate_data_dir.sh: {expected}\n"


def test_validate_data_dir_accepts_a_good_directory_and_its_options(tmp_path):
    d = write_dir(tmp_path / "d", **GOOD)
    result = tool("validate_data_dir.sh", "--no-feats", d)
    assert result.returncode == 0 and result.stdout.endswith(f"Successfully validated data-directory {d}\n")
    assert tool("validate_data_dir.sh", d, "--no-feats").returncode == 0  # after the directory too, as Kaldi's
    (d / "text").unlink()
    assert tool("validate_data_dir.sh", "--no-text", "--no-feats", d).returncode == 0
    write_dir(d, utt2spk="A-1 A\nB-1 B\n_-1 a\na-1 _\n", spk2utt="A A-1\nB B-1\n_ a-1\na _-1\n")
    assert tool("validate_data_dir.sh", "--no-text", "--no-feats", "--no-spk-sort", d).returncode == 0
    write_dir(d, text="A-1 x\nB-1 y\n_-1 z\u00e9\u4e2d\na-1 w\n")  # UTF-8 letters are printable
    assert tool("validate_data_dir.sh", "--no-feats", "--no-spk-sort", d).returncode == 0
    unknown = tool("validate_data_dir.sh", "--no-feat", d)
    assert unknown.returncode == 1 and unknown.stderr.startswith("validate_data_dir.sh: unknown option --no-feat\n".replace(
        "validate_data_dir.sh", str(UTILS / "validate_data_dir.sh")))


def test_copy_data_dir_with_prefixes_and_suffixes(tmp_path):
    src = write_dir(tmp_path / "src", utt2spk="s1-a s1\ns1-b s1\ns2-a s2\n", text="s1-a x\ns1-b y\ns2-a z\n",
                    segments="s1-a r1 0 1\ns1-b r1 1 2\ns2-a r2 0 1\n", wav_scp="r1 /r1.wav\nr2 /r2.wav\n",
                    utt2dur="s1-a 1\ns1-b 1\ns2-a 1\n", spk2gender="s1 f\ns2 m\n")
    dest = tmp_path / "dest"
    result = tool("copy_data_dir.sh", "--utt-prefix", "sp1-", "--spk-prefix", "sp1-", "--utt-suffix", "_x", src, dest)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].endswith(f"Successfully validated data-directory {dest}")
    assert (dest / "utt2spk").read_text() == "sp1-s1-a_x sp1-s1\nsp1-s1-b_x sp1-s1\nsp1-s2-a_x sp1-s2\n"
    assert (dest / "spk2utt").read_text() == "sp1-s1 sp1-s1-a_x sp1-s1-b_x\nsp1-s2 sp1-s2-a_x\n"
    assert (dest / "segments").read_text() == "sp1-s1-a_x r1 0 1\nsp1-s1-b_x r1 1 2\nsp1-s2-a_x r2 0 1\n"
    assert (dest / "wav.scp").read_text() == "r1 /r1.wav\nr2 /r2.wav\n"  # recording ids stay
    assert (dest / "utt2uniq").read_text() == "sp1-s1-a_x s1-a\nsp1-s1-b_x s1-b\nsp1-s2-a_x s2-a\n"
    assert (dest / "spk2gender").read_text() == "sp1-s1 f\nsp1-s2 m\n"
    assert ids(dest / "text") == ids(dest / "utt2dur") == ids(dest / "utt2spk")
    # a suffix that changes the order: Kaldi's copy would leave it unsorted (and fail its own validation)
    suffixed = tool("copy_data_dir.sh", "--utt-suffix", "-b", write_dir(tmp_path / "s2", utt2spk="a a\na-a a\n",
                    text="a x\na-a y\n", wav_scp="a /1\na-a /2\n"), tmp_path / "d2")
    assert suffixed.returncode == 0, suffixed.stderr
    assert (tmp_path / "d2" / "utt2spk").read_text() == "a-a-b a\na-b a\n"
    same = tool("copy_data_dir.sh", src, src)
    assert same.returncode == 1 and "<srcdir> and <destdir> must be different" in same.stderr


def test_combine_data_merges_sorted_and_makes_missing_segments(tmp_path):
    one = write_dir(tmp_path / "one", utt2spk="b-1 b\n", text="b-1 hi\n", wav_scp="b-1 /b.wav\n", utt2dur="b-1 1.5\n")
    two = write_dir(tmp_path / "two", utt2spk="a-1 a\nA-2 A\n", text="a-1 yo\nA-2 x\n", wav_scp="r1 /r.wav\n",
                    segments="A-2 r1 1 2\na-1 r1 0 1\n")
    result = tool("combine_data.sh", "--extra-files", "utt2dur", tmp_path / "all", one, two)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "combine_data.sh: combined segments" in out and "combine_data.sh: combined text" in out
    assert "combine_data.sh [info]: **not combining utt2dur as it does not exist everywhere**" in out
    assert "combine_data.sh [info]: not combining feats.scp as it does not exist" in out
    assert "fix_data_dir.sh: kept all 3 utterances." in out
    d = tmp_path / "all"
    assert (d / "utt2spk").read_text() == "A-2 A\na-1 a\nb-1 b\n"
    assert (d / "segments").read_text() == "A-2 r1 1 2\na-1 r1 0 1\nb-1 b-1 0 1.5\n"  # from one's utt2dur
    assert (d / "wav.scp").read_text() == "b-1 /b.wav\nr1 /r.wav\n"
    assert not (d / "utt2dur").exists()
    assert tool("validate_data_dir.sh", "--no-feats", d).returncode == 0
    (one / "utt2dur").unlink()
    result = tool("combine_data.sh", tmp_path / "all", one, two)
    assert result.returncode == 1
    assert f"combine_data.sh: {one} has no segments file and no utt2dur to make one from" in result.stderr


def test_subset_data_dir_selects_as_kaldi(tmp_path):
    # 10 utterances of 3 speakers, utt2dur growing with the line
    utts = sorted(f"s{i % 3}-u{i}" for i in range(10))
    src = write_dir(tmp_path / "src", utt2spk="".join(f"{u} {u[:2]}\n" for u in utts),
                    text="".join(f"{u} w\n" for u in utts), wav_scp="".join(f"{u} /{u}.wav\n" for u in utts),
                    utt2dur="".join(f"{u} {9 - n}.5\n" for n, u in enumerate(utts)))
    (src / "spk2utt").write_text(tool("utt2spk_to_spk2utt.pl", src / "utt2spk").stdout)

    def subset(*args):
        dest = tmp_path / "out"
        if args[0].endswith("-list"):  # --spk-list <file> <srcdir> <destdir>
            result = tool("subset_data_dir.sh", *args, src, dest)
        else:  # [--option] <srcdir> <num-utt> <destdir>
            result = tool("subset_data_dir.sh", *args[:-1], src, args[-1], dest)
        assert result.returncode == 0, result.stderr
        assert ids(dest / "text") == ids(dest / "wav.scp") == ids(dest / "utt2spk")
        picked = ids(dest / "utt2spk")
        assert result.stdout.endswith(f"reducing #utt from 10 to {len(picked)}\n")
        shutil.rmtree(dest)
        return picked

    # Kaldi's subset_scp.pl: lines 4, 6, 9 of s0-u0 s0-u3 s0-u6 s0-u9 s1-u1 s1-u4 s1-u7 s2-u2 s2-u5 s2-u8
    assert subset("3") == ["s1-u1", "s1-u7", "s2-u8"]
    assert subset("--first", "3") == ["s0-u0", "s0-u3", "s0-u6"]
    assert subset("--last", "2") == ["s2-u5", "s2-u8"]
    assert subset("--per-spk", "2") == ["s0-u0", "s0-u6", "s1-u1", "s1-u4", "s2-u2", "s2-u5"]
    assert subset("--shortest", "2") == ["s2-u5", "s2-u8"]  # utt2dur, as Kaldi's utt2num_frames
    (tmp_path / "list").write_text("s2\ns0\n")
    assert subset("--spk-list", tmp_path / "list") == ["s0-u0", "s0-u3", "s0-u6", "s0-u9", "s2-u2", "s2-u5", "s2-u8"]
    (tmp_path / "list").write_text("s1-u4\ns0-u9\n")
    assert subset("--utt-list", tmp_path / "list") == ["s0-u9", "s1-u4"]
    speakers = subset("--speakers", "4")
    assert len({u[:2] for u in speakers}) == 2 and len(speakers) in (6, 7)  # whole speakers
    too_many = tool("subset_data_dir.sh", src, 11, tmp_path / "out")
    assert too_many.returncode == 1 and "cannot subset to more utterances than you originally had" in too_many.stderr
    assert "unknown option --random" in tool("subset_data_dir.sh", "--random", src, 3, tmp_path / "out").stderr


def test_subset_data_dir_keeps_the_recordings_of_the_segments_kept(tmp_path):
    src = write_dir(tmp_path / "src", utt2spk="s-1 s\ns-2 s\ns-3 s\n", text="s-1 x\ns-2 y\ns-3 z\n",
                    segments="s-1 r1 0 1\ns-2 r2 0 1\ns-3 r2 1 2\n", wav_scp="r1 /r1.wav\nr2 /r2.wav\n",
                    reco2file_and_channel="r1 r1 A\nr2 r2 A\n")
    result = tool("subset_data_dir.sh", "--last", src, 2, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "wav.scp").read_text() == "r2 /r2.wav\n"
    assert (tmp_path / "out" / "reco2file_and_channel").read_text() == "r2 r2 A\n"
    assert tool("validate_data_dir.sh", "--no-feats", tmp_path / "out").returncode == 0


PARSE = r"""#!/usr/bin/env bash
set -euo pipefail
stage=1
name=default
flag=false
help_message="usage: script [options] <a> <b>"
. "{utils}/parse_options.sh"
echo "stage=$stage name=$name flag=$flag args=$#:$*"
"""


def test_parse_options_leaves_positional_arguments_to_the_caller(tmp_path):
    script = tmp_path / "script.sh"
    script.write_text(PARSE.replace("{utils}", str(UTILS)))
    script.chmod(0o755)

    def run(*args):
        return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=30)

    assert run("--stage", "2", "--name", "a b", "x", "y").stdout == "stage=2 name=a b flag=false args=2:x y\n"
    # parsing stops at the first positional argument, as Kaldi's: what follows is the caller's
    assert run("--flag", "true", "x", "--stage", "3").stdout == "stage=1 name=default flag=true args=3:x --stage 3\n"
    assert run("").stdout == "stage=1 name=default flag=false args=1:\n"
    refused = {("--name=v",): "options must be of the form --name value, got '--name=v'",
               ("--flag", "yes"): "--flag takes true or false, got 'yes'",
               ("--nothing", "1"): "unknown option --nothing",
               ("--stage", "1.5"): "option --stage takes a whole number, got '1.5'",
               ("--name",): "option --name needs a value"}
    for args, message in refused.items():
        result = run(*args)
        assert result.returncode == 1 and result.stderr.startswith(f"{script}: {message}\n"), (args, result.stderr)
    (tmp_path / "conf").write_text("name=from_config\nstage=7\n")
    assert run("--config", str(tmp_path / "conf"), "--stage", "4").stdout == \
        "stage=4 name=from_config flag=false args=0:\n"  # the command line wins over --config


def test_asr_sh_and_avsr_sh_still_refuse_a_stray_argument():
    for recipe in (REPO / "egs2" / "librispeech" / "asr1", REPO / "egs2" / "lrs3" / "avsr1_lrsms"):
        result = subprocess.run(["./run.sh", "--stage", "99", "--stop_stage", "99", "stray"], cwd=recipe,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert result.stderr.splitlines()[0].endswith("unexpected argument stray (options only: --name value)")
        assert os.path.islink(recipe / "utils") and (recipe / "utils" / "fix_data_dir.sh").is_file()


DATA_SH = r"""#!/usr/bin/env bash
# ESPnet's local/data.sh shape: options through utils/parse_options.sh, Kaldi's data-dir tools
set -e
set -u
set -o pipefail
log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0
stage=1
stop_stage=100
corpus=
log "$0 $*"
. utils/parse_options.sh
if [ $# -ne 0 ]; then
    log "Error: No positional arguments are required."
    exit 2
fi
. ./path.sh
. ./cmd.sh

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    mkdir -p data/all
    # in the corpus' own order, one utterance without audio
    for spk in b_spk A_spk a_spk; do
        for n in 2 1; do echo "${spk}-${n} ${spk}"; done
    done > data/all/utt2spk
    awk '{ print $1, "hello" }' data/all/utt2spk > data/all/text
    grep -v '^a_spk-2' data/all/utt2spk | awk -v c="${corpus}" '{ print $1, c "/" $1 ".wav" }' > data/all/wav.scp
    utils/utt2spk_to_spk2utt.pl data/all/utt2spk > data/all/spk2utt
    utils/fix_data_dir.sh data/all
    utils/validate_data_dir.sh --no-feats data/all
    utils/subset_data_dir.sh --first data/all 2 data/dev
    utils/filter_scp.pl --exclude data/dev/utt2spk data/all/utt2spk > data/all/train_utts
    utils/subset_data_dir.sh --utt-list data/all/train_utts data/all data/train_part
    utils/copy_data_dir.sh --utt-prefix x- --spk-prefix x- data/dev data/dev_copy
    utils/combine_data.sh data/train data/train_part data/dev_copy
    utils/copy_data_dir.sh data/dev data/test
fi
log "Successfully finished. [elapsed=${SECONDS}s]"
"""

RUN_SH = """#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")"
./asr.sh --lang en --nbpe 16 --train_set train --valid_set dev --test_sets "test" \\
    --asr_config conf/demo/train_asr_lrsms_tiny.yaml --inference_config conf/demo/decode_asr_tiny.yaml "$@"
"""


def test_an_espnet_style_local_data_sh_runs_in_stage_1(tmp_path):
    """A recipe made as docs/recipes.md's "Add a corpus" says, with a local/data.sh written as ESPnet's are."""
    recipe = recipe_from_template(tmp_path)
    (recipe / "conf").symlink_to(Path("../../../conf"))
    for path, text in ((recipe / "run.sh", RUN_SH), (recipe / "local" / "data.sh", DATA_SH)):
        path.write_text(text)
        path.chmod(0o755)
    result = subprocess.run(["./run.sh", "--stage", "1", "--stop_stage", "1", "--local_data_opts",
                             "--corpus /corpus --stage 1"], cwd=recipe, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "fix_data_dir.sh: kept 5 utterances out of 6" in result.stdout
    data = recipe / "data"
    assert (data / "all" / "utt2spk").read_text() == \
        "A_spk-1 A_spk\nA_spk-2 A_spk\na_spk-1 a_spk\nb_spk-1 b_spk\nb_spk-2 b_spk\n"
    assert ids(data / "dev" / "wav.scp") == ids(data / "test" / "text") == ["A_spk-1", "A_spk-2"]
    assert ids(data / "train" / "utt2spk") == ["a_spk-1", "b_spk-1", "b_spk-2", "x-A_spk-1", "x-A_spk-2"]
    assert (data / "train" / "wav.scp").read_text().startswith("a_spk-1 /corpus/a_spk-1.wav\n")
    stray = subprocess.run(["./run.sh", "--stage", "1", "--stop_stage", "1", "--local_data_opts", "stray"],
                           cwd=recipe, capture_output=True, text=True, timeout=60)
    assert stray.returncode == 1 and "Error: No positional arguments are required." in stray.stdout
