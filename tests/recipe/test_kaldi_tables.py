"""Kaldi tables are read one way everywhere: key, then any run of spaces or tabs; bad lines named."""
import pytest

from espnet_lrsms.fileio import read_kaldi_table, split_kaldi_line
from espnet_lrsms.text.nbest import read_nbest
from espnet_lrsms.scoring.sclite import score_dir


def test_split_takes_tabs_and_runs_of_spaces():
    assert split_kaldi_line("utt1\tHELLO WORLD\n") == ("utt1", "HELLO WORLD")
    assert split_kaldi_line("utt1   HELLO  WORLD  \n") == ("utt1", "HELLO  WORLD")
    assert split_kaldi_line("utt1\n") == ("utt1", "")
    assert split_kaldi_line("  \n") == ("", "")


def test_tab_separated_reference_scores_right(tmp_path):
    (tmp_path / "ref").write_text("u1\tA B C\nu2\tD E\n")
    (tmp_path / "hyp").write_text("u1 A B C\nu2 D X\n")
    counts = score_dir(tmp_path / "ref", tmp_path / "hyp", tmp_path / "no_utt2spk", tmp_path / "score", "wer")
    assert counts.percentages()[4] == pytest.approx(100 * 1 / 5)  # one substitution in five words
    assert (tmp_path / "score" / "ref.trn").read_text().splitlines()[0] == "A B C\t(u1-u1)"  # sclite: (speaker-utterance)


def test_duplicate_key_and_non_utf8_line_are_named(tmp_path):
    path = tmp_path / "text"
    path.write_text("u1 a\nu2 b\nu1 c\n")
    with pytest.raises(ValueError, match=r"text:3: u1 appears again \(first on line 1\)"):
        read_kaldi_table(path)
    path.write_bytes(b"u1 a\nu2 \xff\xfe\n")
    with pytest.raises(ValueError, match=r"text:2: not UTF-8"):
        read_kaldi_table(path)


def write_decode(root, text, score, components=None):
    sub = root / "1best_recog"
    sub.mkdir(parents=True)
    (sub / "text").write_text(text)
    (sub / "score").write_text(score)
    if components is not None:
        (sub / "score_components").write_text(components)
    return root


@pytest.mark.parametrize(
    "text, score, components, message",
    [
        ("u1 a b\n", "u1 tensor(nan)\n", None, r"score: u1: the score 'tensor\(nan\)' is not a number"),
        ("u1 a b\n", "u1 -1.0\nu2 -2.0\n", None, r"text: no line for u2"),
        ("u1 a b\nu1 a c\n", "u1 -1.0\n", None, r"text:2: u1 appears again"),
        ("u1 a b\n", "u1 -1.0\n", "u1 {not json\n", r"score_components: u1: not JSON"),
    ],
)
def test_bad_nbest_input_fails_naming_file_and_line(tmp_path, text, score, components, message):
    decode = write_decode(tmp_path / "decode", text, score, components)
    with pytest.raises(ValueError, match=message):
        read_nbest(decode)
