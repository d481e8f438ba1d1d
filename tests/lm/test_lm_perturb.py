"""Seeded homophone (near-homophone on request) substitutions, deletions and insertions from CMUdict;
the substitutes' vocabulary."""
import re

import pytest
import yaml

from espnet_lrsms.lm.perturb import PerturbationConfig, PerturbationCounts, Perturber, Pronunciations
from espnet_lrsms.lm.robustness import substitution_vocabulary
from espnet_lrsms.lm.text import lm_vocabulary, write_lm_text


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


def test_near_homophones_stand_in_when_no_homophone_is_in_the_vocabulary():
    """Issue 24 item 14: RANK's only homophone RANCK is outside the vocabulary, so with near-homophones
    RANK takes BANK (one phone away); the vocabulary filter comes before the fallback."""
    cmu = Pronunciations({"rank": [["R", "AE1", "NG", "K"]], "ranck": [["R", "AE1", "NG", "K"]],
                          "bank": [["B", "AE1", "NG", "K"]], "tank": [["T", "AE1", "NG", "K"]]})
    vocabulary = ["RANK", "BANK"]
    near = Perturber(PerturbationConfig(substitution_rate=1.0, near_homophones=True), cmu, substitution_vocabulary=vocabulary)
    out, counts = near.perturb(["RANK"], "k")
    assert out == ["BANK"] and counts.substituted == 1 and counts.unsubstitutable == 0
    plain = Perturber(PerturbationConfig(substitution_rate=1.0), cmu, substitution_vocabulary=vocabulary)
    assert plain.perturb(["RANK"], "k") == (["RANK"], PerturbationCounts(words=1, unsubstitutable=1))
    # a homophone inside the vocabulary still comes first: no near-homophone then
    with_homophone = Perturber(PerturbationConfig(substitution_rate=1.0, near_homophones=True), cmu,
                               substitution_vocabulary=vocabulary + ["RANCK"])
    assert with_homophone.perturb(["RANK"], "k")[0] == ["RANCK"]


def test_near_homophones_after_the_vocabulary_filter_with_cmudict(cmu):
    assert "ranck" in cmu.homophones("rank") and "bank" in cmu.confusables("rank")
    perturber = Perturber(PerturbationConfig(substitution_rate=1.0, near_homophones=True), cmu,
                          substitution_vocabulary=["RANK", "BANK", "THE"])
    assert perturber.perturb(["RANK"], "k")[0] == ["BANK"]


def recipe_layout(recipe):
    """Configs as recipe stages 7 and 9 write them, paths relative to the recipe dir (ESPnet's output_dir
    included): the base LM trained on exp/lm_stats/train/text, the adapted one on exp/lm_stats/lora_train/text."""
    for name, content in (("train", "u1 TWO FOR ONE\nu2 THE RANK\n"), ("lora_train", "u1 SEVEN EIGHT\n")):
        source = recipe / f"{name}.txt"
        source.write_text(content)
        write_lm_text(recipe / "exp" / "lm_stats" / name, [source])
    base = recipe / "exp" / "lm_x"
    base.mkdir()
    (base / "config.yaml").write_text(yaml.safe_dump({
        "token_type": "bpe", "output_dir": "exp/lm_x",
        "train_data_path_and_name_and_type": [["exp/lm_stats/train/text", "text", "text"]]}))
    adapted = recipe / "exp" / "lm_x_lora_vanilla"
    adapted.mkdir()
    (adapted / "config.yaml").write_text(yaml.safe_dump({
        "token_type": "bpe", "output_dir": "exp/lm_x_lora_vanilla", "lora_conf": {"strategy": "vanilla", "rank": 2},
        "base_lm_config": "exp/lm_x/config.yaml",
        "train_data_path_and_name_and_type": [["exp/lm_stats/lora_train/text", "text", "text"]]}))
    return adapted / "config.yaml"


def test_an_adapted_lm_finds_its_base_lm_from_any_directory(tmp_path, monkeypatch):
    """Issue 24 item 11: the recipe writes base_lm_config relative to the recipe dir; run from elsewhere,
    the adapted LM still answers with its base LM's vocabulary, not its own training text's."""
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    adapted = recipe_layout(recipe)
    base_words = ["FOR", "ONE", "RANK", "THE", "TWO"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    words, origin = lm_vocabulary(adapted)
    assert words == base_words and origin == f"the training text of {recipe / 'exp' / 'lm_x' / 'config.yaml'}"
    conf = yaml.safe_load(adapted.read_text())  # its own training text found from anywhere: no error to notice
    conf["train_data_path_and_name_and_type"][0][0] = str(recipe / "exp" / "lm_stats" / "lora_train" / "text")
    adapted.write_text(yaml.safe_dump(conf))
    assert lm_vocabulary(adapted)[0] == base_words  # not ["EIGHT", "SEVEN"]
    monkeypatch.chdir(recipe)  # from the recipe dir, with the relative path stage 17 passes
    assert lm_vocabulary("exp/lm_x_lora_vanilla/config.yaml")[0] == base_words
    monkeypatch.chdir(recipe / "exp")
    assert lm_vocabulary("lm_x_lora_vanilla/config.yaml")[0] == base_words


def test_a_base_lm_config_next_to_the_experiment_is_found(tmp_path, monkeypatch):
    """A relative base_lm_config may also be relative to the adapted LM's experiment dir."""
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    adapted = recipe_layout(recipe)
    conf = yaml.safe_load(adapted.read_text())
    adapted.write_text(yaml.safe_dump(dict(conf, base_lm_config="../lm_x/config.yaml")))
    monkeypatch.chdir(tmp_path)
    assert lm_vocabulary(adapted)[0] == ["FOR", "ONE", "RANK", "THE", "TWO"]


def test_a_missing_or_ambiguous_base_lm_config_is_named(tmp_path, monkeypatch):
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    adapted = recipe_layout(recipe)
    monkeypatch.chdir(tmp_path)
    conf = yaml.safe_load(adapted.read_text())
    adapted.write_text(yaml.safe_dump(dict(conf, base_lm_config="exp/lm_y/config.yaml")))
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"{adapted}: base_lm_config 'exp/lm_y/config.yaml' is not a file (tried "
            f"{recipe / 'exp' / 'lm_x_lora_vanilla' / 'exp' / 'lm_y' / 'config.yaml'}, {recipe / 'exp' / 'lm_y' / 'config.yaml'})")):
        lm_vocabulary(adapted)
    adapted.write_text(yaml.safe_dump(dict(conf, base_lm_config=str(recipe / "exp" / "gone" / "config.yaml"))))
    with pytest.raises(FileNotFoundError, match=re.escape(f"{adapted}: base_lm_config '{recipe / 'exp' / 'gone' / 'config.yaml'}' is not a file")):
        lm_vocabulary(adapted)
    # a copy of the base LM's config inside the experiment dir, under the same relative name: which one?
    adapted.write_text(yaml.safe_dump(conf))
    (adapted.parent / "exp" / "lm_x").mkdir(parents=True)
    (adapted.parent / "exp" / "lm_x" / "config.yaml").write_text((recipe / "exp" / "lm_x" / "config.yaml").read_text())
    with pytest.raises(ValueError, match=re.escape(f"{adapted}: base_lm_config 'exp/lm_x/config.yaml' is ambiguous")):
        lm_vocabulary(adapted)


def test_adaptation_records_the_base_lm_config_as_an_absolute_path(tmp_path, monkeypatch):
    """The writer: stage 9 passes --base_lm_config relative; the adapted run's config.yaml gets it absolute."""
    import argparse
    import shutil

    from espnet_lrsms.lm.task import LoRALMTask

    from conftest import REPO

    (tmp_path / "exp" / "lm_x").mkdir(parents=True)
    shutil.copy(REPO / "conf" / "lm" / "demo" / "train_lm_transformer_tiny.yaml", tmp_path / "exp" / "lm_x" / "config.yaml")
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(
        lm="transformer", lm_conf={}, model_conf={}, init=None, token_list=["<blank>", "<unk>", "a", "<sos/eos>"],
        lora_conf={"strategy": "vanilla", "rank": 2}, base_lm_config="exp/lm_x/config.yaml", base_lm_file=None,
        output_dir="exp/lm_x_lora", resume=False)
    LoRALMTask.build_model(args)
    assert args.base_lm_config == str(tmp_path / "exp" / "lm_x" / "config.yaml")
