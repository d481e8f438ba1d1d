"""Adaptation is adaptation: a base LM trained on text of another domain (demo/lm/text, plain English in
which the digit words play other roles) and adapted with LoRA to the demo's digit-string transcripts
(ESPnet's LM task and trainer, word tokens, in this process)."""
import pytest

from espnet_lrsms.text.nbest import read_nbest, read_references
from espnet_lrsms.lm.rescore import chosen_words, corpus_wer, lm_scores, parse_grid, rescore, tune_weights

from conftest import REPO
from lm_test_data import demo_transcripts, noisy_nbest, train_lm, write_data_dir, write_decode_dir, write_word_lm_data

pytestmark = pytest.mark.end_to_end  # two short training runs through ESPnet's trainer

LM_CONF = REPO / "conf" / "lm" / "demo"
GENERAL_SENTENCES = 300  # of demo/lm/text's 2,000


@pytest.fixture(scope="module")
def base_and_adapted(tmp_path_factory):
    work = tmp_path_factory.mktemp("lm_adaptation")
    general = work / "general" / "text"
    general.parent.mkdir()
    general.write_text("".join((REPO / "demo" / "lm" / "text").read_text().splitlines(keepends=True)[:GENERAL_SENTENCES]))
    texts = {split: write_data_dir(work / "data", split) / "text" for split in ("train_clean_100", "dev_clean", "test_clean")}
    lm_data = write_word_lm_data(
        work, {"general": [general], "valid": [texts["dev_clean"]], "adapt": [texts["train_clean_100"]]},
        vocabulary_texts=[general, texts["train_clean_100"], texts["dev_clean"]],
    )
    base, adapted = work / "lm_base", work / "lm_lora"
    train_lm([*lm_data["args"]("general"), "--config", str(LM_CONF / "train_lm_transformer_tiny.yaml"),
              "--output_dir", str(base), "--max_epoch", "2", "--batch_size", "32", "--optim_conf", "lr=0.005",
              "--scheduler_conf", "warmup_steps=5"])
    train_lm([*lm_data["args"]("adapt"), "--config", str(LM_CONF / "lora_vanilla_tiny.yaml"), "--output_dir", str(adapted),
              "--base_lm_config", str(base / "config.yaml"), "--base_lm_file", str(base / "latest.pth"), "--max_epoch", "3"])
    from espnet_lrsms.lm.scorer import LMScorer

    return {"work": work, "texts": texts,
            "base": LMScorer(base / "config.yaml", base / "latest.pth"),
            "adapted": LMScorer(adapted / "config.yaml", adapted / "latest.pth")}


def per_token_loss(scorer, sentences):
    return -sum(scorer(sentences)) / sum(len(s.split()) + 1 for s in sentences)


def test_adaptation_lowers_the_loss_on_the_adaptation_text_and_on_unseen_target_text(base_and_adapted):
    base, adapted = base_and_adapted["base"], base_and_adapted["adapted"]
    for split in ("train_clean_100", "test_clean"):  # the adaptation text; the target domain's test set
        sentences = list(demo_transcripts(split).values())
        before, after = per_token_loss(base, sentences), per_token_loss(adapted, sentences)
        print(f"{split}: per-token loss {before:.2f} base -> {after:.2f} adapted")
        assert after < before - 0.5, (split, before, after)


def test_the_adapted_lm_rescores_target_domain_nbest_lists_better(base_and_adapted):
    """Noisy n-best lists of the digit strings (a sound-alike word such as FOR, WON, TOO on top): the
    general LM likes those words, the adapted one does not. λ tuned on dev_clean, WER on test_clean."""
    work = base_and_adapted["work"]
    sets = {}
    for split in ("dev_clean", "test_clean"):
        decode = write_decode_dir(work / "decode" / split, noisy_nbest(demo_transcripts(split)))
        sets[split] = (read_nbest(decode), read_references(base_and_adapted["texts"][split]))
    wer = {}
    for name in ("base", "adapted"):
        scorer = base_and_adapted[name]
        dev_nbest, dev_refs = sets["dev_clean"]
        tuning = tune_weights(dev_nbest, lm_scores(dev_nbest, scorer), dev_refs, parse_grid("0:1:0.05"))
        nbest, refs = sets["test_clean"]
        chosen = rescore(nbest, lm_scores(nbest, scorer), tuning.lm_weight, tuning.length_bonus)
        wer[name] = (tuning.lm_weight, corpus_wer(refs, chosen_words(nbest, chosen)))
    print(f"(λ, test WER): base {wer['base']}, adapted {wer['adapted']}")
    assert wer["adapted"][0] > 0 and wer["adapted"][1] < wer["base"][1] / 3
