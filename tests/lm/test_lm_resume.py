"""A LoRA adaptation killed mid-run and resumed (``--resume true``, as the recipe always trains) ends
with the same ranks and the same adapter weights as an uninterrupted run, for each strategy.

Each run: 3 epochs of 11 optimizer steps on the demo transcripts (tiny LM, word tokens). The run is
killed at step 15 (in epoch 2: resumed from epoch 1's checkpoint, step 11) and again at step 25
(resumed from step 22). Dynamic: budget phase from step 5 to the final allocation at step 18, so the
first resume falls in the budget phase (the smoothed importance must survive) and the second after the
final allocation (the rank pattern must survive). Warm-up: truncation at step 16, between the two.
"""
import json

import pytest
import torch
import yaml

from espnet_lrsms.lm.strategies import LoRAStrategy

from conftest import REPO
from lm_test_data import train_lm, write_data_dir, write_word_lm_data

LM_CONF = REPO / "conf" / "lm" / "demo"
OVERRIDES = {"dynamic": {"tinit": 5, "tfinal": 15}, "warmup": {"truncate_step": 16}}
KILL_AT = (15, 25)


class Killed(RuntimeError):
    pass


@pytest.fixture(scope="module")
def resume_data(tmp_path_factory):
    work = tmp_path_factory.mktemp("lm_resume")
    texts = [write_data_dir(work / "data", split) / "text" for split in ("train_clean_100", "dev_clean")]
    return work, write_word_lm_data(work, {"adapt": texts[:1], "valid": texts[1:]}, texts)


def adaptation_command(work, lm_data, strategy, out):
    conf = yaml.safe_load((LM_CONF / f"lora_{strategy}_tiny.yaml").read_text())
    conf["lora_conf"].update(OVERRIDES.get(strategy, {}))
    config = work / f"lora_{strategy}.yaml"
    config.write_text(yaml.safe_dump(conf))
    return [*lm_data["args"]("adapt"), "--config", str(config), "--output_dir", str(out), "--max_epoch", "3",
            "--base_lm_config", str(LM_CONF / "train_lm_transformer_tiny.yaml"), "--resume", "true"]


@pytest.mark.end_to_end
@pytest.mark.parametrize("strategy", ("vanilla", "dynamic", "warmup", "mixed"))
def test_a_killed_and_resumed_adaptation_ends_as_an_uninterrupted_one(resume_data, strategy, monkeypatch):
    work, lm_data = resume_data
    whole, resumed = work / f"{strategy}_whole", work / f"{strategy}_resumed"
    train_lm(adaptation_command(work, lm_data, strategy, whole))

    pending = set(KILL_AT)
    post_hook = LoRAStrategy._post_hook

    def dying(self, *args):
        post_hook(self, *args)
        if self.step in pending:
            pending.discard(self.step)
            raise Killed(f"killed at step {self.step}")

    monkeypatch.setattr(LoRAStrategy, "_post_hook", dying)
    cmd = adaptation_command(work, lm_data, strategy, resumed)
    for step in KILL_AT:
        with pytest.raises(Killed, match=f"step {step}"):
            train_lm(cmd)
    train_lm(cmd)

    a = torch.load(whole / "latest.pth", map_location="cpu")
    b = torch.load(resumed / "latest.pth", map_location="cpu")
    assert sorted(a) == sorted(b)
    assert int(b["lora_optimizer_steps"]) == 33
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6, msg=key)
    summary = {k: json.loads((d / "lora_ranks.json").read_text()) for k, d in (("a", whole), ("b", resumed))}
    assert summary["a"]["ranks"] == summary["b"]["ranks"]
    assert summary["b"]["total_rank"] == summary["b"]["promised_total_rank"] == 48
    if strategy == "dynamic":
        assert len(set(summary["b"]["ranks"].values())) > 1  # the allocator did place the budget
