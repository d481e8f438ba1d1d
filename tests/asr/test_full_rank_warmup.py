"""Full-rank warm-up, then low rank, in one experiment directory through ESPnet's trainer (tone data)."""
import csv
import subprocess

import pytest
import torch
import yaml

from espnet_lrsms.asr.build import build_asr_model
from espnet_lrsms.asr.full_rank_warmup import KEPT_DIR, MARKER, switch_to_lowrank, warmup_args

from asr_test_data import TINY, train_command

DENSE_KEY = "encoder.encoders.0.feed_forward.w_1.weight"


def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_warmup_arguments():
    config = yaml.safe_load(TINY.read_text())
    assert warmup_args(config, 5) == ["--max_epoch", "5", "--encoder_conf", "lowrank=null", "--decoder_conf", "lowrank=null"]
    del config["scheduler_conf"]["total_epochs"]  # left to max_epoch: pinned to the whole run's 40
    assert warmup_args(config, 5)[-2:] == ["--scheduler_conf", "total_epochs=40"]
    for bad in (0, 40, "2"):
        with pytest.raises(ValueError, match="warmup_full_rank_epochs"):
            warmup_args(config, bad)


@pytest.mark.end_to_end
def test_warm_up_switch_and_resume_give_an_ordinary_low_rank_experiment(tone_data, tmp_path):
    from espnet_lrsms.asr.task import LowRankASRTask

    conf = yaml.safe_load(TINY.read_text())
    conf["max_epoch"] = 3
    conf["scheduler_conf"] = {"warmup_epochs": 0.5, "cooldown_epochs": 1}  # total: max_epoch
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(conf))
    out = tmp_path / "exp"
    command = train_command(tone_data, out)
    command[command.index(str(TINY))] = str(config)

    run(command + warmup_args(conf, 1))
    dense = torch.load(out / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert DENSE_KEY in dense["model"] and dense["reporter"]["epoch"] == 1
    steps = dense["schedulers"][0]["last_epoch"]
    assert dense["schedulers"][0]["total_steps"] == 3 * steps  # the schedule of all three epochs

    assert switch_to_lowrank(out, config) == out / "checkpoint.pth"
    switched = torch.load(out / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert DENSE_KEY not in switched["model"] and "encoder.encoders.0.feed_forward.w_1.u" in switched["model"]
    assert switched["optimizers"][0]["state"] == {}  # a fresh optimizer ...
    assert switched["optimizers"][0]["param_groups"][0]["lr"] == dense["optimizers"][0]["param_groups"][0]["lr"]
    assert switched["schedulers"][0]["last_epoch"] == steps  # ... where the schedule left off
    assert DENSE_KEY in torch.load(out / KEPT_DIR / "1epoch.pth", weights_only=True)
    assert "encoder.encoders.0.feed_forward.w_1.u" in torch.load(out / "1epoch.pth", weights_only=True)
    with open(out / KEPT_DIR / "compression.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(0 <= float(r["relative_error"]) < 1 for r in rows)
    assert (out / KEPT_DIR / MARKER).is_file() and switch_to_lowrank(out, config) is None  # a re-run does nothing

    result = run(command + ["--resume", "true"])
    assert "The training was resumed" in result.stderr
    final = torch.load(out / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert final["reporter"]["epoch"] == 3 and final["schedulers"][0]["last_epoch"] == 3 * steps
    model, _ = LowRankASRTask.build_model_from_file(out / "config.yaml", out / "valid.acc.ave.pth")  # strict
    assert model.encoder.encoders[0].feed_forward.w_1.u.shape[1] < 64
    meta = build_asr_model(out / "config.yaml", vocab_size=model.vocab_size, device="meta")  # as count_params does
    assert sum(p.numel() for p in meta.parameters()) == sum(p.numel() for p in model.parameters())
