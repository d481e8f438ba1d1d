"""Scoring in ESPnet's layout: sclite-format result.txt, checked against an independent count and real sclite."""
import shutil
import subprocess

import pytest

from espnet_lrsms.scoring.results import read_sum_avg, write_results
from espnet_lrsms.scoring.sclite import score_dir, units

REF = {"s1-u1": "A B C D", "s1-u2": "E F G", "s2-u3": "H I", "s2-u4": "J K L M N"}
HYP = {"s1-u1": "A X C D E", "s1-u2": "E G", "s2-u3": "H I", "s2-u4": "K L Q N"}
UTT2SPK = {"s1-u1": "s1", "s1-u2": "s1", "s2-u3": "s2", "s2-u4": "s2"}


def edit_distance(ref, hyp):
    """Plain Levenshtein distance: the independent count."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def _write(path, table):
    path.write_text("".join(f"{k} {v}\n" for k, v in table.items()))


@pytest.fixture
def scored(tmp_path):
    _write(tmp_path / "text", REF)
    _write(tmp_path / "hyp", HYP)
    _write(tmp_path / "utt2spk", UTT2SPK)
    totals = {
        unit: score_dir(tmp_path / "text", tmp_path / "hyp", tmp_path / "utt2spk", tmp_path / f"score_{unit}", unit)
        for unit in ("word", "char")
    }
    return tmp_path, totals


def test_error_counts_match_an_independent_edit_distance(scored):
    _, totals = scored
    for unit, total in totals.items():
        errors = sum(edit_distance(units(REF[k], unit), units(HYP[k], unit)) for k in REF)
        words = sum(len(units(REF[k], unit)) for k in REF)
        assert total.substitutions + total.deletions + total.insertions == errors
        assert total.words == words
    word = totals["word"]
    assert (word.correct, word.substitutions, word.deletions, word.insertions) == (10, 2, 2, 1)
    assert word.percentages()[4] == pytest.approx(100 * 5 / 14)


def test_layout_and_sum_avg_row(scored):
    root, _ = scored
    out = root / "score_word"
    assert (out / "ref.trn").read_text().splitlines()[0] == "A B C D\t(s1-s1-u1)"
    assert (out / "hyp.trn").read_text().splitlines()[3] == "K L Q N\t(s2-s2-u4)"
    snt, wrd, values = read_sum_avg(out / "result.txt")
    assert (snt, wrd) == (4, 14)
    assert values == [71.4, 14.3, 14.3, 7.1, 35.7, 75.0]
    assert units("AB C", "char") == ["A", "B", "<space>", "C"]


def test_results_md(tmp_path, scored):
    root, _ = scored
    decode = tmp_path / "exp" / "decode_x" / "test_set"
    shutil.copytree(root / "score_word", decode / "score_wer")
    md = write_results(tmp_path / "exp").read_text()
    assert "|decode_x/test_set|4|14|71.4|14.3|14.3|7.1|35.7|75.0|" in md


def _sclite():
    if shutil.which("sclite"):
        return ["sclite"]
    if shutil.which("sctk"):
        return ["sctk", "sclite"]
    return None


@pytest.mark.skipif(_sclite() is None, reason="SCTK's sclite is not installed (apt-get install sctk)")
def test_same_table_as_real_sclite(scored):
    root, _ = scored
    out = root / "score_word"
    result = subprocess.run(
        _sclite() + ["-r", "ref.trn", "trn", "-h", "hyp.trn", "trn", "-i", "rm", "-o", "sum", "stdout"],
        cwd=out, capture_output=True, text=True, check=True,
    )
    theirs = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("|")]
    ours = [line.strip() for line in (out / "result.txt").read_text().splitlines() if line.startswith("|")]
    assert ours == theirs
