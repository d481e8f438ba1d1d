"""Unit dropout with ``conv_norm: group_norm``: round(rate · channels) dropped in all, spread over the groups."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from espnet_lrsms.asr.lowrank_conformer_encoder import LowRankConformerEncoder
from espnet_lrsms.asr.unit_dropout import group_norm_of_kept


def conv_encoder(rate, output_size=32, groups=4, seed=0):
    torch.manual_seed(seed)
    return LowRankConformerEncoder(
        16, output_size=output_size, attention_heads=2, linear_units=32, num_blocks=2, input_layer="linear",
        macaron_style=False, dropout_rate=0.0, positional_dropout_rate=0.0, attention_dropout_rate=0.0,
        pos_enc_layer_type="rel_pos", selfattention_layer_type="rel_selfattn", rel_pos_type="latest",
        use_cnn_module=True, cnn_module_kernel=5, conv_norm="group_norm", conv_norm_groups=groups,
        unit_dropout={"blocks": [1], "rate": rate, "modules": ["conv"]},
    )


def drawn_per_group(enc, groups, steps):
    """Dropped channels per group of each of ``steps`` draws (training forwards)."""
    enc.train()
    x, lengths = torch.randn(2, 12, 16), torch.tensor([12, 9])
    counts = []
    for _ in range(steps):
        enc(x, lengths)
        (dropped,) = enc.unit_dropout.dropped_units()
        size = enc.unit_dropout.spaces[0].size
        counts.append(torch.bincount(dropped // (size // groups), minlength=groups).tolist())
    return counts


@pytest.mark.parametrize("rate, output_size, groups, total", [
    (0.3, 32, 4, 10),        # round(0.3 · 32) = 10, not 4 · round(0.3 · 8) = 8
    (0.2012, 64, 32, 13),    # the demo's flat rate, groups of two: round(12.88) = 13, not 32 · round(0.4) = 0
    (0.5, 32, 8, 16),        # even: 2 from each group of 4
])
def test_group_norm_drops_round_rate_times_channels_spread_over_the_groups(rate, output_size, groups, total):
    enc = conv_encoder(rate, output_size, groups)
    assert enc.unit_dropout.spaces[0].num_dropped(rate) == total
    per_channel = enc.unit_dropout.spaces[0].params_per_unit()
    assert enc.unit_dropout_plan.dropped_parameters == total * per_channel
    seen = set()
    for counts in drawn_per_group(enc, groups, steps=12):
        assert sum(counts) == total
        assert max(counts) - min(counts) <= 1 and min(counts) == total // groups
        assert len(set(enc.unit_dropout.dropped_units()[0].tolist())) == total  # distinct channels
        seen.add(tuple(counts))
    if total % groups:
        assert len(seen) > 1  # the groups that lose one more are drawn, not always the first ones


def test_every_group_keeps_a_channel():
    space = conv_encoder(0.99, 32, 16).unit_dropout.spaces[0]  # groups of two
    assert space.num_dropped(0.99) == 16
    for counts in drawn_per_group(conv_encoder(0.99, 32, 16), 16, steps=3):
        assert counts == [1] * 16


def reference_group_norm_of_kept(x, kept, num_groups, weight, bias, eps):
    """Group by group: ``F.group_norm`` with one group over the kept channels of each original group."""
    size = x.shape[1] // num_groups
    outs = []
    for g in range(num_groups):
        mine = kept[(kept // size) == g]
        if len(mine):
            outs.append(F.group_norm(x[:, mine], 1, weight[mine], bias[mine], eps))
    return torch.cat(outs, dim=1)


def test_group_norm_of_kept_normalises_each_group_over_its_kept_channels():
    torch.manual_seed(3)
    x = torch.randn(3, 32, 11, dtype=torch.float64)
    weight, bias = torch.randn(32, dtype=torch.float64), torch.randn(32, dtype=torch.float64)
    keep = torch.ones(32, dtype=torch.bool)
    keep[[0, 1, 2, 9, 17, 18, 30]] = False  # groups of 8 keep 5, 7, 6, 7 channels
    kept = keep.nonzero().squeeze(1)
    got = group_norm_of_kept(x, kept, 4, weight[kept], bias[kept], 1e-5)
    torch.testing.assert_close(got, reference_group_norm_of_kept(x, kept, 4, weight, bias, 1e-5), rtol=1e-12, atol=1e-12)
    # nothing dropped: ESPnet's GroupNorm itself
    norm = nn.GroupNorm(4, 32).double()
    with torch.no_grad():
        norm.weight.copy_(weight)
        norm.bias.copy_(bias)
    torch.testing.assert_close(group_norm_of_kept(x, torch.arange(32), 4, weight, bias, norm.eps), norm(x),
                               rtol=1e-12, atol=1e-12)


def test_a_training_step_with_uneven_groups_normalises_over_the_kept_channels():
    """Rate 0.3 on 4 groups of 8: 10 channels dropped (groups lose 2 or 3); the norm's training output is the
    per-group norm of the kept channels, zero at the dropped ones."""
    enc = conv_encoder(0.3)
    enc.train()
    captured = {}
    norm = enc.encoders[1].conv_module.norm
    norm.register_forward_hook(lambda module, args, output: captured.update(x=args[0], out=output))
    enc(torch.randn(2, 12, 16), torch.tensor([12, 9]))
    (dropped,) = enc.unit_dropout.dropped_units()
    keep = torch.ones(32, dtype=torch.bool)
    keep[dropped] = False
    kept = keep.nonzero().squeeze(1)
    assert len(kept) == 22
    expected = reference_group_norm_of_kept(captured["x"], kept, 4, norm.weight, norm.bias, norm.eps)
    torch.testing.assert_close(captured["out"][:, kept], expected, rtol=1e-5, atol=1e-5)
    assert (captured["out"][:, ~keep] == 0).all()
