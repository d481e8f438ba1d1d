"""Scoring in ESPnet's layout: sclite-format result.txt, checked against an independent count and real sclite."""
import random
import re
import shutil
import subprocess

import pytest
import sentencepiece

from espnet_lrsms.bin.score import main as score_main
from espnet_lrsms.recipe.decode_jobs import merge_outputs
from espnet_lrsms.scoring.results import read_sum_avg, write_results
from espnet_lrsms.scoring.sclite import ScoringText, score_dir, units

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
        unit: score_dir(tmp_path / "text", tmp_path / "hyp", tmp_path / "utt2spk", tmp_path / f"score_{unit}", metric)
        for unit, metric in (("word", "wer"), ("char", "cer"))
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


def test_result_txt_holds_every_alignment_as_sclite_writes_it(scored):
    root, _ = scored
    text = (root / "score_word" / "result.txt").read_text()
    blocks = text.split("DUMP OF SYSTEM ALIGNMENT STRUCTURE")[1]
    assert "Speaker sentences   0:  s1   #utts: 2" in blocks
    u1 = blocks[blocks.index("id: (s1-s1-u1)"):].splitlines()[:5]
    assert u1 == [
        "id: (s1-s1-u1)",
        "Scores: (#C #S #D #I) 3 1 0 1",
        "REF:  a B c d * ",
        "HYP:  a X c d E ",
        "Eval:   S     I ",
    ]
    u4 = blocks[blocks.index("id: (s2-s2-u4)"):].splitlines()[:5]
    assert u4 == [
        "id: (s2-s2-u4)",
        "Scores: (#C #S #D #I) 3 1 1 0",
        "REF:  J k l M n ",
        "HYP:  * k l Q n ",
        "Eval: D     S   ",
    ]
    assert blocks.count("Scores: (#C #S #D #I)") == len(REF)


def test_nlsyms_and_cleaner_as_espnet_scores(tmp_path):
    _write(tmp_path / "text", {"s-a": "hello <noise> world", "s-b": "[laughter] good day"})
    _write(tmp_path / "hyp", {"s-a": "hello world", "s-b": "good day"})
    (tmp_path / "nlsyms.txt").write_text("<noise>\n[laughter]\n")
    plain = score_dir(tmp_path / "text", tmp_path / "hyp", tmp_path / "none", tmp_path / "plain", "wer")
    assert (plain.words, plain.deletions) == (6, 2)
    without = ScoringText.from_files(tmp_path / "nlsyms.txt")
    total = score_dir(tmp_path / "text", tmp_path / "hyp", tmp_path / "none", tmp_path / "nlsyms", "wer", without)
    assert (total.words, total.percentages()[4]) == (4, 0.0)
    assert (tmp_path / "nlsyms" / "ref.trn").read_text().splitlines()[1] == "good day\t(s-b-s-b)"

    # ESPnet applies --cleaner to the references only (--hyp_cleaner to the hypotheses)
    _write(tmp_path / "text", {"s-a": "Mr. Smith paid 2 dollars"})
    _write(tmp_path / "hyp", {"s-a": "mister smith paid two dollars"})
    cleaned = ScoringText.from_files(cleaner="tacotron")
    assert score_dir(tmp_path / "text", tmp_path / "hyp", tmp_path / "none", tmp_path / "c", "wer", cleaned).percentages()[4] == 0.0
    assert score_dir(tmp_path / "text", tmp_path / "hyp", tmp_path / "none", tmp_path / "d", "wer").percentages()[4] == 40.0
    with pytest.raises(FileNotFoundError, match="--nlsyms_txt .*missing.txt: no such file"):
        ScoringText.from_files(tmp_path / "missing.txt")


def test_token_error_rate_uses_the_recipe_bpe_model(tmp_path, scored):
    root, _ = scored
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(["A B C D E F G H I J K L M N Q X"] * 20) + "\n")
    sentencepiece.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(tmp_path / "bpe"), vocab_size=20, model_type="unigram",
        character_coverage=1.0, minloglevel=2,
    )
    decode = tmp_path / "exp" / "my_own_tag" / "test_set"
    (decode / "1best_recog").mkdir(parents=True)
    shutil.copy(root / "hyp", decode / "1best_recog" / "text")
    assert score_main(["--data_dir", str(root), "--decode_dir", str(decode),
                       "--bpemodel", str(tmp_path / "bpe.model"), "--results_md", str(tmp_path / "exp")]) == 0
    model = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "bpe.model"))
    ref_tokens = sum(len(model.encode(v, out_type=str)) for v in REF.values())
    snt, wrd, _ = read_sum_avg(decode / "score_ter" / "result.txt")
    assert (snt, wrd) == (4, ref_tokens)
    md = (tmp_path / "exp" / "RESULTS.md").read_text()
    assert md.index("## Environments") < md.index("### WER") < md.index("### CER") < md.index("### TER")
    assert "|my_own_tag/test_set|4|14|71.4|14.3|14.3|7.1|35.7|75.0|" in md  # any --inference_tag
    assert "- espnet version: `espnet 202511`" in md


def test_results_md(tmp_path, scored):
    root, _ = scored
    decode = tmp_path / "exp" / "decode_x" / "test_set"
    shutil.copytree(root / "score_word", decode / "score_wer")
    md = write_results(tmp_path / "exp").read_text()
    assert "|decode_x/test_set|4|14|71.4|14.3|14.3|7.1|35.7|75.0|" in md


def test_merged_decode_dir_has_espnet_top_level_text(tmp_path):
    for j, keys in ((1, ["u1", "u3"]), (2, ["u2"])):
        out = tmp_path / "logdir" / f"output.{j}" / "1best_recog"
        out.mkdir(parents=True)
        (out / "text").write_text("".join(f"{k} hyp of {k}\n" for k in keys))
        (out / "score").write_text("".join(f"{k} tensor(-1.5)\n" for k in keys))
    merge_outputs(tmp_path / "logdir", 2, tmp_path / "decode")
    assert (tmp_path / "decode" / "text").read_text() == "u1 hyp of u1\nu2 hyp of u2\nu3 hyp of u3\n"
    assert (tmp_path / "decode" / "score").read_text() == (tmp_path / "decode" / "1best_recog" / "score").read_text()


def _sclite():
    if shutil.which("sclite"):
        return ["sclite"]
    if shutil.which("sctk"):
        return ["sctk", "sclite"]
    return None


@pytest.mark.skipif(_sclite() is None, reason="SCTK's sclite is not installed (apt-get install sctk)")
@pytest.mark.parametrize("speaker", ["s1", "Spk00j9bKdiOjkLONG"])
def test_same_result_txt_as_real_sclite(tmp_path, speaker):
    """The whole of result.txt, byte for byte, as ``sclite -i rm -o all stdout`` writes it (the command
    ESPnet runs), with a short and a long speaker id (the speaker column widens)."""
    utt2spk = {k.replace("s1", speaker): v.replace("s1", speaker) for k, v in UTT2SPK.items()}
    _write(tmp_path / "text", {k.replace("s1", speaker): v for k, v in REF.items()})
    _write(tmp_path / "hyp", {k.replace("s1", speaker): v for k, v in {**HYP, "s1-u2": "E G HELLO"}.items()})
    _write(tmp_path / "utt2spk", utt2spk)
    out = tmp_path / "score"
    score_dir(tmp_path / "text", tmp_path / "hyp", tmp_path / "utt2spk", out, "wer")
    result = subprocess.run(
        _sclite() + ["-r", "ref.trn", "trn", "-h", "hyp.trn", "trn", "-i", "rm", "-o", "all", "stdout"],
        cwd=out, capture_output=True, text=True, check=True,
    )
    assert (out / "result.txt").read_text() == result.stdout


@pytest.mark.skipif(_sclite() is None, reason="SCTK's sclite is not installed (apt-get install sctk)")
@pytest.mark.parametrize("metric", ["wer", "cer"])
def test_random_utterances_align_as_real_sclite(tmp_path, metric):
    """200 random utterances (empty ones, mixed case, three speakers): the same result.txt as sclite."""
    rng = random.Random(0)
    vocab = ["a", "B", "c", "dd", "E", "ff", "zz"]
    tables = {"text": {}, "hyp": {}, "utt2spk": {}}
    for k in range(200):
        speaker = rng.choice(["S1", "spkTWO", "x"])
        uttid = f"{speaker}-u{k:04d}"
        tables["text"][uttid] = " ".join(rng.choice(vocab) for _ in range(rng.randint(0 if k % 50 == 0 else 1, 9)))
        tables["hyp"][uttid] = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 9)))
        tables["utt2spk"][uttid] = speaker
    for name, table in tables.items():
        _write(tmp_path / name, table)
    out = tmp_path / "score"
    score_dir(tmp_path / "text", tmp_path / "hyp", tmp_path / "utt2spk", out, metric)
    result = subprocess.run(
        _sclite() + ["-r", "ref.trn", "trn", "-h", "hyp.trn", "trn", "-i", "rm", "-o", "all", "stdout"],
        cwd=out, capture_output=True, text=True, check=True,
    )
    assert (out / "result.txt").read_text() == result.stdout


@pytest.mark.parametrize(
    "hyp, message",
    [
        ({f"x{k}": v for k, v in HYP.items()}, "4 of 4 reference utterances have no hypothesis line (e.g. s1-u1, s1-u2, s2-u3)"),
        ({**HYP, "s9-u9": "A"}, "1 of 5 hypotheses are for no reference utterance (e.g. s9-u9)"),
        ({k: v for k, v in HYP.items() if k != "s2-u4"}, "1 of 4 reference utterances have no hypothesis line (e.g. s2-u4)"),
    ],
    ids=["other ids", "extra id", "missing id"],
)
def test_hypotheses_of_other_utterances_are_refused(tmp_path, hyp, message):
    """Hypothesis ids that do not match the references would score WER 100 %, exit 0; sclite refuses them."""
    data, decode = tmp_path / "data", tmp_path / "decode"
    (decode / "1best_recog").mkdir(parents=True)
    data.mkdir()
    _write(data / "text", REF)
    _write(decode / "1best_recog" / "text", hyp)
    with pytest.raises(SystemExit) as exit_info:
        score_main(["--data_dir", str(data), "--decode_dir", str(decode)])
    assert exit_info.value.code == 2
    with pytest.raises(ValueError, match=re.escape(f"cannot score {decode}/1best_recog/text against {data}/text: {message}")):
        score_dir(data / "text", decode / "1best_recog" / "text", data / "utt2spk", decode / "score_wer", "wer")
    assert not (decode / "score_wer").exists()  # nothing written


def test_an_empty_hypothesis_line_scores_as_all_deleted(tmp_path):
    """ESPnet writes an empty hypothesis as the id alone: it is a hypothesis, not a missing one."""
    _write(tmp_path / "text", REF)
    (tmp_path / "hyp").write_text("".join(f"{k} {v}\n" if k != "s2-u3" else f"{k}\n" for k, v in HYP.items()))
    total = score_dir(tmp_path / "text", tmp_path / "hyp", tmp_path / "utt2spk", tmp_path / "out", "wer")
    assert (total.correct, total.deletions) == (8, 4)
