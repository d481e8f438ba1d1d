"""Full-rank warm-up arguments. The warm-up through ESPnet's trainer (dense epoch, switch, resumed low-rank epochs,
one experiment directory) is tested on the recipe's stage 11, where users run it:
tests/recipe/test_recipes.py::test_full_rank_warmup_then_low_rank_through_stage_11."""
import pytest
import yaml

from espnet_lrsms.asr.full_rank_warmup import warmup_args

from asr_test_data import TINY


def test_warmup_arguments():
    config = yaml.safe_load(TINY.read_text())
    assert warmup_args(config, 5) == ["--max_epoch", "5", "--encoder_conf", "lowrank=null", "--decoder_conf", "lowrank=null"]
    del config["scheduler_conf"]["total_epochs"]  # left to max_epoch: pinned to the whole run's 40
    assert warmup_args(config, 5)[-2:] == ["--scheduler_conf", "total_epochs=40"]
    for bad in (0, 40, "2"):
        with pytest.raises(ValueError, match="warmup_full_rank_epochs"):
            warmup_args(config, bad)
