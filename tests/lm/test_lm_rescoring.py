"""N-best reading, the rescoring rule, weight tuning and NPRR arithmetic, with a plain-Python LM."""
import json

import pytest

from espnet_lrsms.text.nbest import Hypothesis, read_nbest, read_references, write_nbest
from espnet_lrsms.lm.perturb import PerturbationConfig, Perturber, Pronunciations
from espnet_lrsms.lm.rescore import (
    corpus_wer,
    lm_scores,
    parse_grid,
    rescore,
    tune_weights,
    word_errors,
    write_rescored,
)
from espnet_lrsms.lm.robustness import evaluate_robustness, perturb_nbest

from lm_test_data import noisy_nbest, write_decode_dir

REFS = {"u1": "ONE TWO THREE", "u2": "FOUR FIVE", "u3": "SIX SEVEN EIGHT NINE"}


def known_sentences_lm(known):
    """log P: 0 for a known sentence, -10 per word otherwise (a stand-in for an LM trained on `known`)."""
    return lambda sentences: [0.0 if s in known else -10.0 * max(1, len(s.split())) for s in sentences]


def test_word_errors_is_the_edit_distance():
    assert word_errors("A B C".split(), "A B C".split()) == 0
    assert word_errors("A B C".split(), "A X C".split()) == 1
    assert word_errors("A B C".split(), "A C".split()) == 1
    assert word_errors("A B C".split(), "A B C D E".split()) == 2
    assert word_errors([], "A".split()) == 1
    assert corpus_wer({"a": ["A", "B"], "b": ["C", "D"]}, {"a": ["A", "B"], "b": ["C"]}) == pytest.approx(25.0)


def test_reads_espnet_decode_dirs(tmp_path):
    decode = write_decode_dir(tmp_path / "dev", noisy_nbest(REFS))
    (decode / "1best_recog" / "score_components").write_text(
        "".join(f"{k} " + json.dumps({"scores": {"decoder": -2.0, "ctc": 2.0}, "weights": {"decoder": 0.7, "ctc": 0.3}}) + "\n" for k in REFS)
    )
    nbest = read_nbest(decode)
    assert sorted(nbest) == sorted(REFS) and all(len(h) == 3 for h in nbest.values())
    assert nbest["u1"][1].text == "ONE TWO THREE" and nbest["u1"][0].score == -1.0  # from "tensor(-1.0000)"
    assert nbest["u1"][0].am_score(["decoder", "ctc"]) == pytest.approx(0.7 * -2.0 + 0.3 * 2.0)
    assert nbest["u1"][1].scores == {}
    with pytest.raises(KeyError, match="no score component"):
        nbest["u1"][1].am_score(["decoder"])
    with pytest.raises(FileNotFoundError, match="no 1best_recog"):
        read_nbest(tmp_path)
    write_nbest(tmp_path / "copy", nbest)
    assert read_nbest(tmp_path / "copy")["u3"][2].text == nbest["u3"][2].text


def test_the_lm_weight_is_tuned_and_rescoring_picks_the_references(tmp_path):
    nbest = read_nbest(write_decode_dir(tmp_path / "dev", noisy_nbest(REFS)))
    refs = {k: v.split() for k, v in REFS.items()}
    lm = lm_scores(nbest, known_sentences_lm(set(REFS.values())))
    assert rescore(nbest, lm, 0.0) == {k: 0 for k in REFS}  # λ = 0: the first pass
    tuning = tune_weights(nbest, lm, refs, parse_grid("0:1:0.25"))
    assert tuning.wer == 0.0 and tuning.lm_weight == 0.25  # ties go to the smallest λ that reaches it
    before = [row for row in tuning.table if row[0] == 0.0][0][2]
    assert before == pytest.approx(100 * 3 / 9)  # one sound-alike per utterance, 9 words
    out = write_rescored(tmp_path / "rescored" / "dev", nbest, lm, tuning.lm_weight, info={"lm": "toy"})
    assert read_references(out / "1best_recog" / "text") == refs
    assert json.loads((out / "rescore.json").read_text())["lm_weight"] == 0.25
    assert not (tmp_path / "rescored" / "dev.tmp").exists()


def test_length_bonus_enters_the_score(tmp_path):
    nbest = {"u": [Hypothesis("A", -1.0), Hypothesis("A B C", -2.0)]}
    lm = {"u": [0.0, 0.0]}
    assert rescore(nbest, lm, 0.0, length_bonus=0.0) == {"u": 0}
    assert rescore(nbest, lm, 0.0, length_bonus=1.0) == {"u": 1}  # -1 + 1 < -2 + 3


def test_grid_parsing():
    assert parse_grid("0:1:0.25") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_grid("0.1,0.3") == [0.1, 0.3]
    with pytest.raises(ValueError, match="need start <= stop and step > 0"):
        parse_grid("1:0:0.1")


def test_nprr_is_the_relative_wer_degradation_under_perturbation(tmp_path):
    nbest = read_nbest(write_decode_dir(tmp_path / "dev", noisy_nbest(REFS)))
    refs = {k: v.split() for k, v in REFS.items()}
    scorer = known_sentences_lm(set(REFS.values()))
    perturber = Perturber(PerturbationConfig(substitution_rate=1.0, seed=0), Pronunciations.shared())
    result = evaluate_robustness(nbest, refs, scorer, perturber, lm_weight=1.0)
    lm = result["lm"]
    assert lm.wer_clean == 0.0 and lm.nprr is None  # undefined on a perfect clean rescoring
    # every word with a homophone or neighbour changes: the references are gone from every list
    perturbed, counts = perturb_nbest(nbest, perturber)
    assert counts.substituted == counts.words - counts.unsubstitutable > 0
    assert lm.wer_nbest_perturbed > 0
    # 1-best perturbation: the LM still finds each (clean) reference in second place
    assert lm.wer_1best_perturbed == 0.0
    fp = result["first_pass"]
    assert fp.wer_clean == pytest.approx(100 * 3 / 9)
    assert fp.nprr == pytest.approx(100 * (fp.wer_nbest_perturbed - fp.wer_clean) / fp.wer_clean)
    assert fp.one_best_prr == pytest.approx(fp.nprr)  # without an LM only the first hypothesis matters


# Hand-computed NPRR. Homophones: TWO/TO, SEE/SEA, FOR/FOUR (each the other's only one); DOG, CAT have none.
# With substitution rate 1 every homophone-bearing word is swapped. λ = 1, β = 0: score = AM + log P.
TOY_PRONUNCIATIONS = {"two": [["T", "UW1"]], "to": [["T", "UW1"]], "see": [["S", "IY1"]], "sea": [["S", "IY1"]],
                      "for": [["F", "AO1", "R"]], "four": [["F", "AO1", "R"]], "dog": [["D", "AO1", "G"]], "cat": [["K", "AE1", "T"]]}
TOY_LM = {"TWO DOG": -1.0, "TO DOG": -5.0, "DOG": -2.0, "SEE CAT": -1.0, "SEA CAT": -5.0, "CAT": -2.0,
          "FOUR DOG": -4.0, "FOR DOG": -1.0}
TOY_REFS = {"u1": "TWO DOG", "u2": "SEE CAT", "u3": "FOR DOG", "u4": "SEE CAT"}  # 8 words
TOY_NBEST = {  # (text, AM)
    "u1": [("TWO DOG", -1.0), ("DOG", -3.0)],
    "u2": [("SEE CAT", -1.0), ("CAT", -2.0)],
    "u3": [("FOUR DOG", -1.0), ("FOR DOG", -5.0)],
    "u4": [("SEE CAT", -1.0), ("SEA CAT", -1.5)],
}


def test_nprr_and_one_best_prr_on_a_hand_computed_nbest_set():
    nbest = {k: [Hypothesis(t, s) for t, s in hyps] for k, hyps in TOY_NBEST.items()}
    refs = {k: v.split() for k, v in TOY_REFS.items()}
    perturber = Perturber(PerturbationConfig(substitution_rate=1.0), Pronunciations(TOY_PRONUNCIATIONS))
    result = evaluate_robustness(nbest, refs, lambda sentences: [TOY_LM[s] for s in sentences], perturber, lm_weight=1.0)
    lm = result["lm"]
    # clean:   u1 -2 vs -5 -> TWO DOG (0); u2 -2 vs -4 -> SEE CAT (0); u3 -5 vs -6 -> FOUR DOG (1 sub);
    #          u4 -2 vs -6.5 -> SEE CAT (0)                                                  WER 1/8 = 12.5 %
    assert lm.wer_clean == pytest.approx(12.5)
    # N-best:  u1 TO DOG -6 vs DOG -5 -> DOG (1 del); u2 SEA CAT -6 vs CAT -4 -> CAT (1 del);
    #          u3 FOR DOG -2 vs FOUR DOG -9 -> FOR DOG (0); u4 SEA CAT -6 vs SEE CAT -2.5 -> (0)   WER 2/8 = 25 %
    assert lm.wer_nbest_perturbed == pytest.approx(25.0)
    assert lm.nprr == pytest.approx(100.0)  # 100 (25 - 12.5) / 12.5
    # 1-best:  u1, u2 as N-best (1 + 1); u3 FOR DOG -2 vs FOR DOG -6 (0); u4 SEA CAT -6 vs SEA CAT -6.5 (1)  3/8
    assert lm.wer_1best_perturbed == pytest.approx(37.5)
    assert lm.one_best_prr == pytest.approx(200.0)  # 100 (37.5 - 12.5) / 12.5
    # first pass alone keeps the first hypothesis: TWO DOG, SEE CAT, FOUR DOG (1), SEE CAT -> 1/8; perturbed:
    # TO DOG (1), SEA CAT (1), FOR DOG (0), SEA CAT (1) -> 3/8 both ways
    fp = result["first_pass"]
    assert (fp.wer_clean, fp.wer_nbest_perturbed, fp.wer_1best_perturbed) == pytest.approx((12.5, 37.5, 37.5))
    assert fp.nprr == pytest.approx(200.0) and fp.one_best_prr == pytest.approx(200.0)
    assert result["nbest_counts"].substituted == 6 and result["nbest_counts"].unsubstitutable == 8  # of 14 words
