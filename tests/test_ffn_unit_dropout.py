"""FFN unit dropout (ambient-targeted or flat): exact units dropped, exact parameters frozen per step."""
import subprocess

import pytest
import torch
import yaml

from espnet_lrsms.asr.ffn_unit_dropout import FFNUnitDropout, count_dropped, flat_rate_matching
from espnet_lrsms.asr.lowrank_conformer_encoder import LowRankConformerEncoder

from conftest import REPO
from test_training import train_command


def encoder(ffn_unit_dropout=None, num_blocks=4, seed=0, linear_units=64):
    torch.manual_seed(seed)
    return LowRankConformerEncoder(
        16, output_size=32, attention_heads=2, linear_units=linear_units, num_blocks=num_blocks, input_layer="linear",
        macaron_style=True, dropout_rate=0.0, positional_dropout_rate=0.0, attention_dropout_rate=0.0,
        lowrank={"mhsa": 0.5, "ffn": [0.2, 0.6]}, ffn_unit_dropout=ffn_unit_dropout,
    )


def test_exactly_round_rate_times_units_are_dropped_and_the_rest_rescaled():
    drop = FFNUnitDropout(0.3)
    out = drop(torch.ones(2, 5, 64))
    zero_units = (out == 0).all(dim=(0, 1))
    assert int(zero_units.sum()) == 19  # round(0.3 · 64)
    torch.testing.assert_close(out[..., ~zero_units], torch.full_like(out[..., ~zero_units], 64 / 45))
    assert not torch.equal(drop(torch.ones(64)) == 0, drop(torch.ones(64)) == 0)  # a fresh draw each step
    drop.eval()
    assert torch.equal(drop(torch.ones(3, 64)), torch.ones(3, 64))


def test_the_dropped_units_parameters_get_no_gradient_and_the_count_is_exact():
    enc = encoder({"blocks": [2], "rate": 0.5})
    plan = enc.ffn_unit_dropout_plan
    assert plan.blocks == (2,)
    enc.train()
    x = torch.randn(3, 20, 16)
    out, _, _ = enc(x, torch.tensor([20, 17, 12]))
    out.pow(2).sum().backward()
    frozen = 0
    for b, block in enumerate(enc.encoders):
        for ffn in (block.feed_forward, block.feed_forward_macaron):
            dead_rows = (ffn.w_1.u.grad == 0).all(dim=1)
            dead_bias = ffn.w_1.bias.grad == 0
            dead_columns = (ffn.w_2.vt.grad == 0).all(dim=0)
            if b == 2:
                assert int(dead_rows.sum()) == 32  # half of the 64 units
                assert torch.equal(dead_rows, dead_bias) and torch.equal(dead_rows, dead_columns)
                frozen += int(dead_rows.sum()) * (ffn.w_1.u.shape[1] + 1) + int(dead_columns.sum()) * ffn.w_2.vt.shape[0]
            else:
                assert not dead_rows.any() and not dead_columns.any()
    assert frozen == plan.dropped_parameters
    assert 0 < plan.dropped_fraction < 0.1


def test_no_parameters_or_keys_added_and_inference_is_unchanged():
    plain, dropped = encoder(None), encoder({"blocks": "all", "rate": 0.5})
    assert plain.state_dict().keys() == dropped.state_dict().keys()
    dropped.load_state_dict(plain.state_dict())
    plain.eval(), dropped.eval()
    x, lengths = torch.randn(2, 10, 16), torch.tensor([10, 8])
    torch.testing.assert_close(dropped(x, lengths)[0], plain(x, lengths)[0])


def test_flat_rate_drops_as_many_parameters_as_the_targeted_setting():
    enc = encoder(num_blocks=6, linear_units=256)  # linear FFN ranks [0.2, 0.6]: later blocks own more per unit
    targeted = count_dropped(enc.encoders, [1, 4], 0.5)
    flat = flat_rate_matching(enc.encoders, [1, 4], 0.5)
    assert 0.1 < flat < 0.25
    miss = abs(count_dropped(enc.encoders, range(6), flat) - targeted)
    assert miss <= 0.01 * targeted
    # no single rate does better: every FFN drops a whole number of units
    assert miss == min(abs(count_dropped(enc.encoders, range(6), k / 1024) - targeted) for k in range(1024))


@pytest.mark.parametrize("option, message", [
    ({"blocks": [4], "rate": 0.5}, r"ffn_unit_dropout\.blocks: \[4\] not in 0 … 3"),
    ({"blocks": [1, 1], "rate": 0.5}, r"names a block twice"),
    ({"blocks": [], "rate": 0.5}, r"ffn_unit_dropout\.blocks: expected a non-empty list"),
    ({"blocks": [1], "rate": 1.0}, r"ffn_unit_dropout\.rate: expected a fraction in \[0, 1\), got 1\.0"),
    ({"blocks": [1]}, r"ffn_unit_dropout: expected \{blocks"),
    ({"blocks": [1], "rate": 0.5, "seed": 3}, r"ffn_unit_dropout: expected \{blocks"),
])
def test_bad_options_name_the_key(option, message):
    with pytest.raises(ValueError, match=message):
        encoder(option)


def test_conf_pair_drops_the_same_parameter_fraction():
    from espnet_lrsms.tasks.build import build_asr_model

    dropped = []
    for name in ("ambient", "flat"):
        config = REPO / "conf" / "analysis" / f"train_asr_conformer_lrsms_{name}_dropout.yaml"
        model = build_asr_model(config, vocab_size=5000, device="meta")
        dropped.append(model.encoder.ffn_unit_dropout_plan.dropped_parameters)
    assert abs(dropped[0] - dropped[1]) <= 0.005 * dropped[0], dropped


@pytest.mark.recipe
def test_training_with_unit_dropout_through_espnets_trainer(tone_data, tmp_path):
    out = tmp_path / "exp"
    result = subprocess.run(
        train_command(tone_data, out, "--max_epoch", "1",
                      "--encoder_conf", "ffn_unit_dropout={'blocks': [1], 'rate': 0.5}"),
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["encoder_conf"]["ffn_unit_dropout"] == {"blocks": [1], "rate": 0.5}
    assert "encoder_conf.ffn_unit_dropout: blocks [1], rate 0.5:" in result.stderr
