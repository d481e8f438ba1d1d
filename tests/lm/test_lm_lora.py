"""LM training and the four LoRA strategies through ESPnet's real LM task and trainer (in this process),
on the demo corpus' transcripts with word tokens; then rescoring and NPRR with the trained LMs."""
import json
import re

import pytest
import torch

from espnet_lrsms.lm.lora_config import LoRAConfig, LoRAConfigError
from espnet_lrsms.lowrank import rank_for

from conftest import REPO
from lm_test_data import demo_transcripts, noisy_nbest, train_lm, write_data_dir, write_decode_dir, write_word_lm_data

LM_CONF = REPO / "conf" / "lm" / "demo"
STRATEGIES = ("vanilla", "dynamic", "warmup", "mixed")
# the demo LM: 2 blocks; attention 64 x 64 (linear_q/k/v/out), feed-forward 64 <-> 256 (w_1, w_2)
LAYERS = 12
MIXED_RANKS = {("mhsa", 0): 2, ("mhsa", 1): 5, ("ffn", 0): 4, ("ffn", 1): 6}  # conf/lm/demo/lora_mixed_tiny.yaml


@pytest.fixture(scope="module")
def lm_setup(tmp_path_factory):
    """Word-level data, a base LM trained on train + dev transcripts, and one adapted LM per strategy."""
    work = tmp_path_factory.mktemp("lm")
    data = work / "data"
    for split in ("train_clean_100", "dev_clean", "test_clean"):
        write_data_dir(data, split)
    texts = {split: data / split / "text" for split in ("train_clean_100", "dev_clean")}
    lm_data = write_word_lm_data(
        work, {"train": list(texts.values()), "valid": [texts["dev_clean"]], "adapt": [texts["train_clean_100"]]},
        vocabulary_texts=list(texts.values()),
    )
    common = lm_data["args"]

    base = work / "lm_base"
    train_lm([*common("train"), "--config", str(LM_CONF / "train_lm_transformer_tiny.yaml"), "--output_dir", str(base),
           "--max_epoch", "4", "--batch_size", "32", "--optim_conf", "lr=0.005", "--scheduler_conf", "warmup_steps=5"])
    adapted, logs = {}, {}
    for strategy in STRATEGIES:
        out = work / f"lora_{strategy}"
        logs[strategy] = train_lm([
            *common("adapt"), "--config", str(LM_CONF / f"lora_{strategy}_tiny.yaml"), "--output_dir", str(out),
            "--base_lm_config", str(base / "config.yaml"), "--base_lm_file", str(base / "latest.pth"), "--max_epoch", "3",
        ])
        adapted[strategy] = out
    return {"work": work, "data": data, "base": base, "adapted": adapted, "logs": logs}


def checkpoint_ranks(state):
    """Ranks from a saved state dict alone: rows of lora_A (LoRA), unmasked singular values (AdaLoRA)."""
    ranks = {}
    for key, value in state.items():
        if m := re.match(r"(.*)\.lora_A\.default\.weight$", key):
            ranks[m.group(1)] = value.shape[0]
        elif m := re.match(r"(.*)\.lora_E\.default$", key):
            ranks[m.group(1)] = int((value != 0).sum())
    return ranks


def module_type_and_block(name):
    kind = name.rsplit(".", 1)[1]
    return ("ffn" if kind in ("w_1", "w_2") else "mhsa"), int(re.search(r"encoders\.(\d+)\.", name).group(1))


@pytest.mark.end_to_end
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_ends_with_the_rank_budget_it_promised(lm_setup, strategy):
    out = lm_setup["adapted"][strategy]
    summary = json.loads((out / "lora_ranks.json").read_text())
    ranks = checkpoint_ranks(torch.load(out / "latest.pth", map_location="cpu"))
    assert len(ranks) == LAYERS
    assert summary["optimizer_steps"] == 3 * 11  # 3 epochs x 11 batches (180 training sentences, 16 a batch)
    assert sum(ranks.values()) == summary["total_rank"] == summary["promised_total_rank"] == 48
    if strategy in ("vanilla", "warmup"):
        assert set(ranks.values()) == {4}
    elif strategy == "mixed":
        assert {n: r for n, r in ranks.items()} == {n: MIXED_RANKS[module_type_and_block(n)] for n in ranks}
    else:  # dynamic: the budget, but placed by importance; every layer started at rank 8
        assert max(ranks.values()) <= 8
        state = torch.load(out / "latest.pth", map_location="cpu")
        assert all(state[f"{n}.lora_A.default"].shape[0] == 8 for n in ranks)


@pytest.mark.end_to_end
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_trainable_parameter_counts_are_printed_and_right(lm_setup, strategy):
    log = "\n".join(lm_setup["logs"][strategy])
    start = re.search(rf"LoRA strategy {strategy} \(start.*?trainable parameters ([\d,]+) of ([\d,]+)", log)
    end = re.search(rf"LoRA strategy {strategy} \(end.*?ranks (.*?), total rank (\d+)", log)
    assert start and end, log[-2000:]
    trainable = int(start.group(1).replace(",", ""))
    per_rank = {"mhsa": 64 + 64, "ffn": 64 + 256}  # in + out of one rank-1 LoRA update
    if strategy == "vanilla":
        expected = 2 * (4 * 4 * per_rank["mhsa"] + 2 * 4 * per_rank["ffn"])
    elif strategy == "warmup":  # trains at rank 16 first
        expected = 2 * (4 * 16 * per_rank["mhsa"] + 2 * 16 * per_rank["ffn"])
    elif strategy == "dynamic":  # rank 8 of P, Q and the 8 singular values
        expected = 2 * (4 * 8 * (per_rank["mhsa"] + 1) + 2 * 8 * (per_rank["ffn"] + 1))
    else:
        expected = sum(
            (4 if t == "mhsa" else 2) * r * per_rank[t] for (t, _), r in MIXED_RANKS.items()
        )
    assert trainable == expected
    assert int(end.group(2)) == 48


@pytest.mark.end_to_end
def test_adaptation_leaves_the_base_weights_alone(lm_setup):
    base = torch.load(lm_setup["base"] / "latest.pth", map_location="cpu")
    for strategy in STRATEGIES:
        adapted = torch.load(lm_setup["adapted"][strategy] / "latest.pth", map_location="cpu")
        for key, value in base.items():
            parts = key.rsplit(".", 1)
            moved = f"{parts[0]}.base_layer.{parts[1]}"  # PEFT moves a wrapped layer's weights under base_layer
            torch.testing.assert_close(adapted[moved if moved in adapted else key], value, rtol=0, atol=0)


@pytest.mark.end_to_end
def test_adaptation_changes_what_the_lm_says(lm_setup):
    from espnet_lrsms.lm.scorer import LMScorer

    sentences = ["ONE TWO THREE", "OH OH", "NINE EIGHT SEVEN SIX"]
    base = LMScorer(lm_setup["base"] / "config.yaml", lm_setup["base"] / "latest.pth")(sentences)
    for strategy in STRATEGIES:
        out = lm_setup["adapted"][strategy]
        scores = LMScorer(out / "config.yaml", out / "latest.pth")(sentences)  # strict load, ranks from the file
        assert all(s < 0 for s in scores)
        assert max(abs(a - b) for a, b in zip(scores, base)) > 1e-4, strategy


@pytest.mark.end_to_end
def test_shallow_fusion_decoding_loads_adapted_lms_with_their_adapters(lm_setup):
    """ESPnet's decoding builds its fusion LM with LMTask, which drops LoRA weights (strict=False);
    espnet_lrsms.bin.asr_inference builds it with the adapters, at the checkpoint's ranks."""
    from espnet2.tasks.lm import LMTask

    from espnet_lrsms.bin.asr_inference import ProjectSpeech2Text

    out = lm_setup["adapted"]["warmup"]
    state = torch.load(out / "latest.pth", map_location="cpu")
    model, _ = ProjectSpeech2Text.lm_task.build_model_from_file(out / "config.yaml", out / "latest.pth", "cpu")
    assert set(model.state_dict()) == set(state)
    assert checkpoint_ranks(model.state_dict()) == checkpoint_ranks(state)
    plain, _ = LMTask.build_model_from_file(out / "config.yaml", out / "latest.pth", "cpu")
    assert not any("lora_" in key for key in plain.state_dict())  # what ESPnet alone would have decoded with


@pytest.mark.end_to_end
def test_rescoring_with_an_lm_trained_on_the_references_lowers_the_wer(lm_setup, capsys):
    from espnet_lrsms.bin.lm_rescore import main as rescore_main
    from espnet_lrsms.text.nbest import read_references
    from espnet_lrsms.lm.rescore import corpus_wer

    work, data = lm_setup["work"], lm_setup["data"]
    refs = demo_transcripts("dev_clean")
    decode = write_decode_dir(work / "decode" / "dev_clean", noisy_nbest(refs))
    out = work / "decode_rescored"
    rescore_main([
        "--lm_train_config", str(lm_setup["base"] / "config.yaml"), "--lm_file", str(lm_setup["base"] / "latest.pth"),
        "--tune_decode_dir", str(decode), "--tune_text", str(data / "dev_clean" / "text"),
        "--decode_dir", str(decode), "--output_root", str(out), "--data_root", str(data),
    ])
    ref_words = {k: v.split() for k, v in refs.items()}
    before = corpus_wer(ref_words, read_references(decode / "1best_recog" / "text"))
    after = corpus_wer(ref_words, read_references(out / "dev_clean" / "1best_recog" / "text"))
    print(f"noisy n-best: WER {before:.1f} % first pass, {after:.1f} % rescored")
    assert before > 25.0  # one sound-alike per utterance on top of every list
    assert after < before / 3
    assert "Sum/Avg" in (out / "dev_clean" / "score_wer" / "result.txt").read_text()
    weight, bonus = (float(x) for x in (out / "lm_weight").read_text().split())
    assert weight > 0


@pytest.mark.end_to_end
def test_nprr_command_prints_both_metrics_and_is_seeded(lm_setup, capsys):
    from espnet_lrsms.bin.lm_robustness import main as robustness_main

    work, data = lm_setup["work"], lm_setup["data"]
    decode = write_decode_dir(work / "decode_rob" / "test_clean", noisy_nbest(demo_transcripts("test_clean"), seed=1, sound_alike=False))
    out = lm_setup["adapted"]["dynamic"]
    args = ["--lm_train_config", str(out / "config.yaml"), "--lm_file", str(out / "latest.pth"),
            "--decode_dir", str(decode), "--text", str(data / "test_clean" / "text"), "--lm_weight", "0.5",
            "--substitution_rate", "0.5", "--deletion_rate", "0.1", "--insertion_rate", "0.1",
            "--substitution_vocabulary", "none"]  # the word LM knows digits only: no homophone of a digit is in it
    capsys.readouterr()
    robustness_main([*args, "--seed", "3", "--json", str(work / "rob.json")])
    first = capsys.readouterr().out
    robustness_main([*args, "--seed", "3"])
    assert capsys.readouterr().out == first
    match = re.search(r"NPRR = ([-+][\d.]+) %\s+1-best PRR = ([-+][\d.]+) %", first)
    assert match, first
    result = json.loads((work / "rob.json").read_text())
    lm = result["lm"]
    assert lm["nprr"] == pytest.approx(100 * (lm["wer_nbest_perturbed"] - lm["wer_clean"]) / lm["wer_clean"])
    assert float(match.group(1)) == pytest.approx(lm["nprr"], abs=0.05)
    assert result["perturbed_nbest_counts"]["substituted"] > 0
    # perturbing every hypothesis hurts at least as much as perturbing the first pass' 1-best alone, without an LM
    fp = result["first_pass"]
    assert fp["wer_nbest_perturbed"] == pytest.approx(fp["wer_1best_perturbed"])
    robustness_main([*args, "--seed", "4"])
    assert capsys.readouterr().out != first


def test_bad_lora_conf_names_key_and_value():
    with pytest.raises(LoRAConfigError, match=r"lora_conf.warmup_rank: must be above rank \(8\).*got 4"):
        LoRAConfig.from_dict({"strategy": "warmup", "rank": 8, "warmup_rank": 4, "truncate_step": 10})
    with pytest.raises(LoRAConfigError, match=r"lora_conf.strategy: expected one of .*got 'adalora'"):
        LoRAConfig.from_dict({"strategy": "adalora", "rank": 8})
    with pytest.raises(LoRAConfigError, match=r"unknown key\(s\) \['init_rank'\] for strategy 'vanilla'"):
        LoRAConfig.from_dict({"strategy": "vanilla", "rank": 8, "init_rank": 12})
    with pytest.raises(LoRAConfigError, match=r"lora_conf.ranks.mhsa\[0\] \(α_i\): expected a rank fraction α in \(0, 1\], got 2"):
        LoRAConfig.from_dict({"strategy": "mixed", "ranks": {"mhsa": [2, 0.5]}})


def test_the_lora_scaling_is_lora_alpha_and_its_old_name_alpha_still_reads(caplog):
    """``alpha`` is a rank fraction everywhere else in the package: the LoRA scaling is ``lora_alpha``; an
    experiment's config.yaml written with the old ``alpha`` still loads, with a warning."""
    assert LoRAConfig.from_dict({"strategy": "vanilla", "rank": 8, "lora_alpha": 32}).lora_alpha == 32.0
    with caplog.at_level("WARNING"):
        old = LoRAConfig.from_dict({"strategy": "vanilla", "rank": 8, "alpha": 32})
    assert old == LoRAConfig.from_dict({"strategy": "vanilla", "rank": 8, "lora_alpha": 32})
    assert "lora_conf.alpha is read as lora_alpha" in caplog.text
    with pytest.raises(LoRAConfigError, match=r"lora_conf: both 'alpha' and 'lora_alpha' given"):
        LoRAConfig.from_dict({"strategy": "vanilla", "rank": 8, "alpha": 32, "lora_alpha": 16})
    with pytest.raises(LoRAConfigError, match=r"lora_conf.lora_alpha: expected a number > 0, got -1"):
        LoRAConfig.from_dict({"strategy": "vanilla", "rank": 8, "lora_alpha": -1})


def test_lora_conf_keys_are_checked_by_their_fields_and_mixed_ranks_take_the_explicit_schedule_form():
    short = LoRAConfig.from_dict({"strategy": "mixed", "ranks": {"mhsa": [0.0625, 0.25], "ffn": 0.125}})
    explicit = LoRAConfig.from_dict({"strategy": "mixed", "ranks": {
        "mhsa": {"kind": "linear", "alpha_i": 0.0625, "alpha_f": 0.25}, "ffn": {"kind": "uniform", "alpha": 0.125}}})
    assert explicit == short
    assert [rank_for(a, 64, 64) for a in explicit.ranks["mhsa"].alphas(4)] == [4, 7, 10, 13]
    for conf, message in [
        ({"strategy": "warmup", "rank": 8, "warmup_rank": 32},
         r"lora_conf.truncate_step: missing for strategy 'warmup'; expected an integer >= 1"),
        ({"strategy": "vanilla"}, r"lora_conf.rank: missing for strategy 'vanilla'; expected an integer >= 1 \("),
        ({"strategy": "vanilla", "rank": 8, "dropout": 1.0}, r"lora_conf.dropout: expected a number in \[0, 1\), got 1.0"),
        ({"strategy": "dynamic", "rank": 8, "init_rank": 12, "beta1": 0}, r"lora_conf.beta1: expected a number in \(0, 1\), got 0"),
        ({"strategy": "dynamic", "rank": 8, "init_rank": 12, "tinit": -1}, r"lora_conf.tinit: expected an integer >= 0, got -1"),
        ({"strategy": "mixed", "ranks": {"mhsa": {"kind": "cosine"}}},
         r"lora_conf.ranks.mhsa.kind: expected one of \['dense', 'uniform', 'linear', 'per_block'\], got 'cosine'"),
    ]:
        with pytest.raises(LoRAConfigError, match=message):
            LoRAConfig.from_dict(conf)
