"""Seeded homophone (near-homophone on request) substitutions, deletions and insertions from CMUdict;
the substitutes' vocabulary."""
import pytest
import yaml

from espnet_lrsms.lm.perturb import PerturbationConfig, Perturber, Pronunciations
from espnet_lrsms.lm.robustness import substitution_vocabulary
from espnet_lrsms.lm.text import write_lm_text


@pytest.fixture(scope="module")
def cmu():
    return Pronunciations.shared()


def test_homophones_come_from_cmudict(cmu):
    assert {"to", "too"} <= set(cmu.homophones("TWO"))
    assert {"for", "fore"} <= set(cmu.homophones("four"))
    assert "ate" in cmu.homophones("EIGHT")
    assert cmu.homophones("seven") == []
    assert cmu.homophones("xqzvb") == [] and cmu.substitutes("xqzvb") == []


def test_confusables_are_one_phone_away(cmu):
    # SEVEN = S EH V AH N; HEAVEN = HH EH V AH N (one phone substituted), EVEN? no: IY V AH N (two)
    conf = cmu.confusables("SEVEN")
    assert "heaven" in conf and "seven" not in conf
    assert "seventh" in cmu.confusables("seven")  # one phone inserted (S EH V AH N TH)
    assert "cat" in cmu.confusables("cast") and "cat" in cmu.confusables("at")  # deletion / insertion
    assert cmu.substitutes("SEVEN") == []  # homophones only, unless asked
    assert cmu.substitutes("SEVEN", near_homophones=True) == conf  # no homophone: the confusables stand in
    assert cmu.substitutes("TWO") == cmu.substitutes("TWO", near_homophones=True) == cmu.homophones("TWO")


def test_near_homophones_are_an_explicit_option(cmu):
    words = ["SEVEN", "TWO"]
    plain, counts = Perturber(PerturbationConfig(substitution_rate=1.0), cmu).perturb(words, "k")
    assert plain[0] == "SEVEN" and plain[1] != "TWO" and counts.unsubstitutable == 1
    near, counts = Perturber(PerturbationConfig(substitution_rate=1.0, near_homophones=True), cmu).perturb(words, "k")
    assert near[0].lower() in cmu.confusables("SEVEN") and counts.substituted == 2


def test_perturbation_is_seeded_per_hypothesis(cmu):
    config = PerturbationConfig(substitution_rate=0.5, deletion_rate=0.1, insertion_rate=0.1, seed=7)
    perturber = Perturber(config, cmu, insertion_vocabulary=["ONE", "TWO"])
    words = "ONE TWO FOUR EIGHT OH ONE TWO FOUR".split()
    a, _ = perturber.perturb(words, "utt1/1")
    assert perturber.perturb(words, "utt1/1")[0] == a  # same seed, same key: same result
    perturber.perturb(words, "other/3")  # perturbing something else in between changes nothing
    assert perturber.perturb(words, "utt1/1")[0] == a
    assert perturber.perturb(words, "utt1/2")[0] != a
    other_seed = Perturber(PerturbationConfig(0.5, 0.1, 0.1, seed=8), cmu, insertion_vocabulary=["ONE", "TWO"])
    assert other_seed.perturb(words, "utt1/1")[0] != a
    assert all(w.isupper() for w in a)  # the case of the input is kept


def test_rates_are_kept(cmu):
    words = ["TWO", "FOUR", "EIGHT", "ONE"] * 500  # all have homophones
    for sub, dele, ins in ((0.3, 0.0, 0.0), (0.1, 0.2, 0.15)):
        perturber = Perturber(PerturbationConfig(sub, dele, ins, seed=0), cmu, insertion_vocabulary=["OH"])
        out, counts = perturber.perturb(words, "long")
        n = len(words)
        assert counts.words == n and counts.unsubstitutable == 0
        assert counts.substituted / n == pytest.approx(sub, abs=0.03)
        assert counts.deleted / n == pytest.approx(dele, abs=0.03)
        assert counts.inserted / n == pytest.approx(ins, abs=0.03)
        assert len(out) == n - counts.deleted + counts.inserted
    none = Perturber(PerturbationConfig(0.0, 0.0, 0.0), cmu)
    assert none.perturb(words, "x")[0] == words


def test_words_without_a_pronunciation_stay(cmu):
    perturber = Perturber(PerturbationConfig(substitution_rate=1.0), cmu)
    out, counts = perturber.perturb(["XQZVB", "TWO"], "k")
    assert out[0] == "XQZVB" and out[1] in {"TO", "TOO", "TEW", "TU", "TUE", "THUY"}
    assert counts.substituted == 1 and counts.unsubstitutable == 1


def test_substitutes_can_be_restricted_to_a_vocabulary(cmu):
    perturber = Perturber(PerturbationConfig(substitution_rate=1.0), cmu, substitution_vocabulary=["TO", "FOR"])
    assert perturber.perturb(["TWO", "FOUR", "SEVEN"], "k")[0] == ["TO", "FOR", "SEVEN"]


def test_bad_rates_are_named():
    with pytest.raises(ValueError, match="deletion_rate: a probability in \\[0, 1\\], got 1.5"):
        PerturbationConfig(deletion_rate=1.5)
    with pytest.raises(ValueError, match="substitution_rate \\+ deletion_rate must be <= 1"):
        PerturbationConfig(substitution_rate=0.7, deletion_rate=0.6)


def test_a_vocabulary_keeps_rare_spellings_out(cmu):
    assert "thee" in cmu.homophones("the") and "ranck" in cmu.homophones("rank")  # all of CMUdict
    vocabulary = ["THE", "RANK", "TO", "TOO", "TWO", "A"]
    perturber = Perturber(PerturbationConfig(substitution_rate=1.0), cmu, substitution_vocabulary=vocabulary)
    out, counts = perturber.perturb(["THE", "RANK", "TWO"], "k")
    assert out[:2] == ["THE", "RANK"] and out[2] in {"TO", "TOO"} and counts.unsubstitutable == 2


def test_the_recipe_takes_the_lms_vocabulary(tmp_path):
    """Word LM: its token list; BPE LM: the words of its training text (words.txt from stage 6); an adapted
    LM: its base LM's, so every LM of a recipe sees the same perturbed n-best lists."""
    transcripts = tmp_path / "transcripts"
    transcripts.write_text("u1 TWO FOR ONE\nu2 THE RANK\n")
    text = write_lm_text(tmp_path / "lm_stats" / "train", [transcripts])
    assert (text.parent / "words.txt").read_text().split() == ["FOR", "ONE", "RANK", "THE", "TWO"]
    bpe = tmp_path / "bpe_lm.yaml"
    bpe.write_text(yaml.safe_dump({"token_type": "bpe", "token_list": ["<blank>", "▁T"],
                                   "train_data_path_and_name_and_type": [[str(text), "text", "text"]]}))
    word = tmp_path / "word_lm.yaml"
    word.write_text(yaml.safe_dump({"token_type": "word", "token_list": ["<blank>", "<unk>", "TO", "TWO", "<sos/eos>"]}))
    adapted = tmp_path / "adapted_lm.yaml"
    adapted.write_text(yaml.safe_dump({"token_type": "bpe", "lora_conf": {"strategy": "vanilla", "rank": 2},
                                       "base_lm_config": str(bpe), "train_data_path_and_name_and_type": [[str(transcripts), "text", "text"]]}))
    assert substitution_vocabulary("lm", bpe)[0] == ["FOR", "ONE", "RANK", "THE", "TWO"]
    assert substitution_vocabulary("lm", adapted) == substitution_vocabulary("lm", bpe)
    assert substitution_vocabulary("lm", word)[0] == ["TO", "TWO"]
    assert substitution_vocabulary(str(transcripts), None)[0] == ["FOR", "ONE", "RANK", "THE", "TWO"]
    assert substitution_vocabulary("none", word) == (None, "all of CMUdict")
