"""Rank schedules: the arithmetic of uniform, linear (LR-SMS Eq. 2) and per-block α, and bad values."""
import pytest

from espnet_lrsms.lowrank import LowRankConfig, LowRankConfigError, rank_for


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
