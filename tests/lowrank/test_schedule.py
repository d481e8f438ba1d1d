"""Rank schedules: the arithmetic of uniform, linear (LR-SMS Eq. 2) and per-block α, their short and explicit
``{kind: ...}`` forms, a kind registered by a test, and bad values."""
from dataclasses import dataclass
from typing import ClassVar

import pytest
import yaml

from espnet_lrsms.lowrank import AlphaSchedule, LowRankConfig, LowRankConfigError, rank_for
from espnet_lrsms.lowrank.options import option
from espnet_lrsms.lowrank.schedule import ALPHA, SCHEDULES, register_schedule


def test_uniform():
    conf = LowRankConfig.from_dict({"mhsa": 0.25})
    assert conf.mhsa.alphas(12) == [0.25] * 12
    assert conf.ffn.alphas(12) == [None] * 12  # left out: dense


def test_linear_counts_blocks_from_zero():
    alphas = LowRankConfig.from_dict({"ffn": [0.2, 0.5]}).ffn.alphas(12)
    assert alphas[0] == pytest.approx(0.2)
    assert alphas[1] == pytest.approx(0.2 + 0.3 / 12)
    assert alphas[-1] == pytest.approx(0.2 + 11 / 12 * 0.3)  # α_f itself is never reached
    # LR-SMS decoder FFN: B = 6, ranks of a 3072 x 768 layer
    ranks = [rank_for(a, 768, 3072) for a in LowRankConfig.from_dict({"ffn": [0.2, 0.5]}).ffn.alphas(6)]
    assert ranks == [154, 192, 230, 269, 307, 346]


def test_per_block_list_and_mapping_and_null_entries():
    conf = LowRankConfig.from_dict({"mhsa": [0.1, 0.2, None], "ffn": {"per_block": [0.3, 0.4]}})
    assert conf.mhsa.alphas(3) == [0.1, 0.2, None]
    assert conf.ffn.alphas(2) == [0.3, 0.4]  # a mapping makes a 2-list per-block, not linear
    assert LowRankConfig.from_dict({"ffn": [0.3, 0.4]}).ffn.alphas(2) == [0.3, 0.35]


def test_rank_rounds_half_up_and_is_at_least_one():
    assert rank_for(0.25, 768, 768) == 192
    assert rank_for(0.12, 768, 3072) == 92  # 92.16
    assert rank_for(0.5 / 768, 768, 768) == 1  # 0.5 rounds up
    assert rank_for(0.0001, 768, 768) == 1
    assert rank_for(1.0, 768, 3072) == 768


def test_null_and_empty_mean_dense():
    assert LowRankConfig.from_dict(None).is_dense
    assert LowRankConfig.from_dict({}).is_dense
    assert LowRankConfig.from_dict({"mhsa": None, "ffn": None, "init": "kaiming"}).is_dense


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"mhsa": 0}, r"encoder_conf.lowrank.mhsa: expected a rank fraction α in \(0, 1\], got 0"),
        ({"ffn": 1.5}, r"encoder_conf.lowrank.ffn: expected a rank fraction α in \(0, 1\], got 1.5"),
        ({"ffn": -0.1}, r"encoder_conf.lowrank.ffn: expected a rank fraction α in \(0, 1\], got -0.1"),
        ({"mhsa": [0.1, 1.2]}, r"encoder_conf.lowrank.mhsa\[1\] \(α_f\): expected a rank fraction α in \(0, 1\], got 1.2"),
        ({"mhsa": "0.1"}, r"encoder_conf.lowrank.mhsa: expected a rank fraction α in \(0, 1\], got '0.1'"),
        ({"mhsa": True}, r"encoder_conf.lowrank.mhsa: expected a rank fraction α in \(0, 1\], got True"),
        ({"fnn": 0.2}, r"encoder_conf.lowrank: unknown key\(s\) \['fnn'\]"),
        ({"init": "xavier"}, r"encoder_conf.lowrank.init: expected one of \['svd', 'kaiming', 'kaiming_traditional'\], got 'xavier'"),
        ({"keep_dense_above_break_even": "yes"}, r"keep_dense_above_break_even: expected true/false, got 'yes'"),
        ({"mhsa": []}, r"encoder_conf.lowrank.mhsa: expected a non-empty list"),
        ({"mhsa": {"blocks": [0.1]}}, r"encoder_conf.lowrank.mhsa: a mapping must be \{per_block"),
        ([0.1, 0.2], r"encoder_conf.lowrank: expected a mapping"),
    ],
)
def test_bad_values_name_key_and_value(conf, message):
    with pytest.raises(LowRankConfigError, match=message):
        LowRankConfig.from_dict(conf, "encoder_conf.lowrank")


def test_per_block_list_of_wrong_length_names_the_lengths():
    conf = LowRankConfig.from_dict({"mhsa": [0.1, 0.2, 0.3]}, "decoder_conf.lowrank")
    with pytest.raises(LowRankConfigError, match=r"decoder_conf.lowrank.mhsa: .*one α per block \(6\), got 3 values"):
        conf.mhsa.alphas(6, "decoder_conf.lowrank.mhsa")


# one 3072 x 768 feed-forward layer (LR-SMS decoder) over B = 6 blocks: the ranks each form gives
SHORT_AND_EXPLICIT = [
    ("0.25", "{kind: uniform, alpha: 0.25}", [192] * 6),
    ("[0.2, 0.5]", "{kind: linear, alpha_i: 0.2, alpha_f: 0.5}", [154, 192, 230, 269, 307, 346]),
    ("[0.1, null, 0.3, 0.25, 0.5, 0.2]", "{kind: per_block, values: [0.1, null, 0.3, 0.25, 0.5, 0.2]}",
     [77, None, 230, 192, 384, 154]),
    ("{per_block: [0.5, 0.5, 0.5, 0.25, 0.25, 0.25]}", "{kind: per_block, values: [0.5, 0.5, 0.5, 0.25, 0.25, 0.25]}",
     [384, 384, 384, 192, 192, 192]),
    ("null", "{kind: dense}", [None] * 6),
]


@pytest.mark.parametrize("short, explicit, ranks", SHORT_AND_EXPLICIT)
def test_the_explicit_form_gives_the_short_form_s_ranks(short, explicit, ranks):
    schedules = [LowRankConfig.from_dict(yaml.safe_load(f"ffn: {form}")).ffn for form in (short, explicit)]
    assert schedules[0] == schedules[1]
    for schedule in schedules:
        assert [None if a is None else rank_for(a, 768, 3072) for a in schedule.alphas(6)] == ranks


@pytest.mark.parametrize(
    "spec, message",
    [
        ("{kind: cosine}", r"encoder_conf.lowrank.mhsa.kind: expected one of \['dense', 'uniform', 'linear', 'per_block'\], got 'cosine'"),
        ("{kind: linear, alpha_i: 0.2}",
         r"encoder_conf.lowrank.mhsa.alpha_f: missing for kind 'linear'; expected a rank fraction α in \(0, 1\]"),
        ("{kind: uniform, alpha: 0.2, alpha_f: 0.5}",
         r"encoder_conf.lowrank.mhsa: unknown key\(s\) \['alpha_f'\] for kind 'uniform'; known keys are \['alpha'\]"),
        ("{kind: linear, alpha_i: 0.2, alpha_f: 1.5}", r"encoder_conf.lowrank.mhsa.alpha_f: expected a rank fraction α in \(0, 1\], got 1.5"),
        ("{kind: per_block, values: [0.2, 2]}", r"encoder_conf.lowrank.mhsa.values\[1\]: expected a rank fraction α in \(0, 1\] or null, got 2"),
        ("{kind: per_block, values: 0.2}", r"encoder_conf.lowrank.mhsa.values: expected a non-empty list, each a rank fraction α"),
        ("{kind: dense, alpha: 0.2}", r"encoder_conf.lowrank.mhsa: unknown key\(s\) \['alpha'\] for kind 'dense'; known keys are \[\]"),
    ],
)
def test_a_bad_explicit_schedule_names_kind_key_and_value(spec, message):
    with pytest.raises(LowRankConfigError, match=message):
        LowRankConfig.from_dict(yaml.safe_load(f"mhsa: {spec}"), "encoder_conf.lowrank")


@dataclass(frozen=True)
class Step(AlphaSchedule):
    """``low`` for the first ``split`` blocks, ``high`` after them."""

    kind: ClassVar[str] = "step"
    low: float = option(help="α of the first blocks", **ALPHA)
    high: float = option(help="α of the rest", **ALPHA)
    split: int = option(help="how many blocks get low", low=0)

    def alphas(self, num_blocks, where="lowrank"):
        return [self.low if b < self.split else self.high for b in range(num_blocks)]


def test_a_new_kind_is_one_registered_class():
    register_schedule(Step)
    try:
        conf = LowRankConfig.from_dict(yaml.safe_load("mhsa: {kind: step, low: 0.25, high: 0.5, split: 2}\nffn: 0.5"))
        assert conf.mhsa == Step(0.25, 0.5, 2)
        assert [rank_for(a, 768, 768) for a in conf.mhsa.alphas(4)] == [192, 192, 384, 384]
        with pytest.raises(LowRankConfigError, match=r"lowrank.mhsa.split: expected an integer >= 0, got -1"):
            LowRankConfig.from_dict(yaml.safe_load("mhsa: {kind: step, low: 0.25, high: 0.5, split: -1}"))
        with pytest.raises(LowRankConfigError, match=r"lowrank.mhsa.kind: expected one of \[.*'per_block', 'step'\], got 'steps'"):
            LowRankConfig.from_dict({"mhsa": {"kind": "steps"}})
        with pytest.raises(ValueError, match=r"rank schedule kind 'step' is already registered \(Step\)"):
            register_schedule(Step)
    finally:
        SCHEDULES.pop("step")
    with pytest.raises(LowRankConfigError, match=r"got 'step'"):
        LowRankConfig.from_dict({"mhsa": {"kind": "step", "low": 0.25, "high": 0.5, "split": 2}})
