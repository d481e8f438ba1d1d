"""Bad n-best input fails naming the file and the line or utterance (issue 17 item 6)."""
import re

import pytest

from espnet_lrsms.text.nbest import read_nbest


def decode_dir(tmp_path, text=b"utt1 a b\nutt2 c\n", score=b"utt1 tensor(-1.5)\nutt2 -2.0\n", components=None):
    sub = tmp_path / "decode" / "1best_recog"
    sub.mkdir(parents=True)
    (sub / "text").write_bytes(text)
    (sub / "score").write_bytes(score)
    if components is not None:
        (sub / "score_components").write_bytes(components)
    return tmp_path / "decode", sub


COMPONENTS = (b'utt1 {"scores": {"decoder": -1.0}, "weights": {"decoder": 0.7}}\n'
              b'utt2 {"scores": {"ctc": -2.5}, "weights": {"ctc": 0.3}}\n')


@pytest.mark.parametrize("case, expected", [
    ({"score": b"utt1 nan\nutt2 -2.0\n"}, "{sub}/score: utt1: the score 'nan' is not a number"),
    ({"score": b"utt1 tensor(-1.5)\nutt2 much\n"}, "{sub}/score: utt2: cannot read a score from 'much'"),
    ({"text": b"utt1 a b\n"}, "{sub}/text: no line for utt2, which {sub}/score has"),
    ({"score": b"utt1 -1.0\nutt2 -2.0\nutt1 -3.0\n"}, "{sub}/score:3: utt1 appears again (first on line 1)"),
    ({"text": b"utt1 a b\nutt2 \xff\xfe\n"}, "{sub}/text:2: not UTF-8 text"),
    ({"components": b'utt1 {"scores": {"decoder": -1.0}\nutt2 {}\n'}, "{sub}/score_components: utt1: not JSON"),
    # issue 24 item 4: an infinite score would always win (or always lose) the rescoring
    ({"score": b"utt1 inf\nutt2 -2.0\n"}, "{sub}/score: utt1: the score 'inf' is not finite"),
    ({"score": b"utt1 tensor(-1.5)\nutt2 tensor(-inf)\n"}, "{sub}/score: utt2: the score 'tensor(-inf)' is not finite"),
    # a text line without its score would drop the utterance from rescoring and its WER
    ({"score": b"utt1 tensor(-1.5)\n"}, "{sub}/score: no line for utt2, which {sub}/text has"),
    # score_components (read with --am_components): NaN and Infinity are JSON to Python, not scores
    ({"components": COMPONENTS.replace(b"-1.0", b"NaN")}, "{sub}/score_components: utt1: scores.decoder is NaN, not a finite number"),
    ({"components": COMPONENTS.replace(b"0.7", b"Infinity")}, "{sub}/score_components: utt1: weights.decoder is Infinity, not a finite number"),
    ({"components": COMPONENTS.replace(b"-2.5", b'"-2.5"')}, '{sub}/score_components: utt2: scores.ctc is "-2.5", not a finite number'),
    ({"components": COMPONENTS.replace(b'{"scores": {"ctc"', b'{"score": {"ctc"')},
     "{sub}/score_components: utt2: not an object with 'scores' and 'weights'"),
    ({"components": COMPONENTS.split(b"\n")[0] + b"\n"}, "{sub}/score_components: no line for utt2, which {sub}/score has"),
])
def test_bad_nbest_input_is_named(tmp_path, case, expected):
    root, sub = decode_dir(tmp_path, **case)
    with pytest.raises(ValueError, match=re.escape(expected.format(sub=sub))):
        read_nbest(root)


def test_the_good_case_reads_both_hypotheses(tmp_path):
    root, _ = decode_dir(tmp_path)
    nbest = read_nbest(root)
    assert [(h.text, h.score) for h in nbest["utt1"] + nbest["utt2"]] == [("a b", -1.5), ("c", -2.0)]


def test_score_components_are_read_as_numbers(tmp_path):
    root, _ = decode_dir(tmp_path, components=COMPONENTS)
    nbest = read_nbest(root)
    assert nbest["utt1"][0].am_score(["decoder"]) == pytest.approx(-0.7)
    assert nbest["utt2"][0].am_score(["ctc"]) == pytest.approx(-0.75)
