"""Federated unit dropout (whole blocks or FFN only): exact entries dropped, held through real AdamW steps."""
import logging

import pytest
import torch
import yaml
from espnet.nets.pytorch_backend.conformer.convolution import ConvolutionModule
from torch import nn

from espnet_lrsms.asr.lowrank_conformer_encoder import LowRankConformerEncoder
from espnet_lrsms.asr.unit_dropout import count_dropped, flat_rate_matching
from espnet_lrsms.train.step_hooks import TrainingRun, attached_step_hooks, step_hooks

from conftest import REPO
from asr_test_data import train_command


def encoder(unit_dropout=None, num_blocks=4, seed=0, linear_units=64, conv_norm="group_norm", **kwargs):
    torch.manual_seed(seed)
    return LowRankConformerEncoder(
        16, output_size=32, attention_heads=2, linear_units=linear_units, num_blocks=num_blocks, input_layer="linear",
        macaron_style=True, dropout_rate=0.0, positional_dropout_rate=0.0, attention_dropout_rate=0.0,
        pos_enc_layer_type="rel_pos", selfattention_layer_type="rel_selfattn", rel_pos_type="latest",
        use_cnn_module=True, cnn_module_kernel=5, conv_norm=conv_norm, conv_norm_groups=8,
        lowrank={"mhsa": 0.5, "ffn": [0.2, 0.6]}, unit_dropout=unit_dropout, **kwargs,
    )


def backward(enc, seed=1):
    torch.manual_seed(seed)
    out, _, _ = enc(torch.randn(3, 20, 16), torch.tensor([20, 17, 12]))
    loss = out.pow(2).mean()
    loss.backward()
    return loss


def held_masks(enc):
    """Per parameter name, a bool tensor marking the entries the current step drops."""
    names = {id(p): n for n, p in enc.named_parameters()}
    masks = {n: torch.zeros_like(p, dtype=torch.bool) for n, p in enc.named_parameters()}
    for e in enc.unit_dropout.held_entries():
        e.view(masks[names[id(e.param)]])[(slice(None),) * e.dim + (e.index,)] = True
    return masks


def test_whole_blocks_drop_every_weight_matrix_and_exactly_the_planned_count():
    enc = encoder({"blocks": [2], "rate": 0.5})
    plan = enc.unit_dropout_plan
    assert (plan.blocks, plan.modules) == ((2,), ("mhsa", "ffn", "conv"))
    enc.train()
    backward(enc)
    masks = held_masks(enc)
    assert sum(int(m.sum()) for m in masks.values()) == plan.dropped_parameters == 4784
    for name, p in enc.named_parameters():
        dropped = masks[name]
        assert (p.grad[dropped] == 0).all(), name
        # everything else learns (a key bias has no gradient in softmax attention, with or without dropout)
        if not name.endswith("linear_k.bias"):
            assert (p.grad[~dropped] != 0).all(), name
    # every weight matrix of the block loses entries (a factorized layer on its unit side: u rows, vt columns)
    assert sorted(n[len("encoders.2."):] for n, m in masks.items() if m.any() and m.dim() > 1) == sorted(
        ["self_attn.linear_q.u", "self_attn.linear_k.u", "self_attn.linear_pos.u", "self_attn.linear_v.u",
         "self_attn.linear_out.vt", "self_attn.pos_bias_u", "self_attn.pos_bias_v"]
        + [f"{f}.w_{i}" for f in ("feed_forward", "feed_forward_macaron") for i in ("1.u", "2.vt")]
        + [f"conv_module.{c}.weight" for c in ("pointwise_conv1", "depthwise_conv", "pointwise_conv2")])
    # half the units of each dimension: 16 of 32 q/k, v and conv channels, 32 of 64 FFN units
    assert int(masks["encoders.2.conv_module.pointwise_conv1.weight"].sum()) == 2 * 16 * 32
    assert int(masks["encoders.2.feed_forward.w_2.vt"].any(dim=0).sum()) == 32
    assert masks["encoders.2.self_attn.pos_bias_u"].sum() == 16
    block = sum(p.numel() for p in enc.encoders[2].parameters())
    assert 0.3 < plan.dropped_parameters / block < 0.4  # the residual-side biases and the layer norms stay


def test_ffn_only_is_the_old_option():
    enc = encoder({"blocks": [1, 3], "rate": 0.25, "modules": ["ffn"]})
    old = encoder(None, ffn_unit_dropout={"blocks": [1, 3], "rate": 0.25})
    assert enc.unit_dropout_plan == old.unit_dropout_plan
    assert enc.unit_dropout_plan.modules == ("ffn",)
    enc.train()
    backward(enc)
    masks = held_masks(enc)
    assert sorted({n.split(".w_")[0] for n, m in masks.items() if m.any()}) == [
        f"encoders.{b}.{f}" for b in (1, 3) for f in ("feed_forward", "feed_forward_macaron")]
    assert sum(int(m.sum()) for m in masks.values()) == enc.unit_dropout_plan.dropped_parameters
    assert enc.unit_dropout_plan.dropped_parameters == count_dropped(enc.encoders, [1, 3], 0.25, ["ffn"])


def test_kept_units_are_scaled_so_a_dimension_keeps_its_mean():
    enc = encoder({"blocks": [0], "rate": 0.25})
    enc.train()
    dropout = enc.unit_dropout
    units = dropout.dropped_units()
    ffn = next(i for i, s in enumerate(dropout.spaces) if s.name == "0.feed_forward")
    mask = dropout.spaces[ffn].masks[0]
    m = dropout.multiplier(ffn, mask, torch.ones(2, 3, 64))
    assert int((m == 0).sum()) == 16 and torch.equal(m[units[ffn]], torch.zeros(16))
    torch.testing.assert_close(m.sum(), torch.tensor(64.0))  # kept units scaled by 64 / 48
    glu = next(i for i, s in enumerate(dropout.spaces) if s.name == "0.conv_module")
    m = dropout.multiplier(glu, dropout.spaces[glu].masks[0], torch.ones(2, 64, 7))
    assert m.shape == (64, 1) and int((m == 0).sum()) == 2 * 8  # value and gate halves, not rescaled


def test_no_state_dict_keys_and_inference_unchanged():
    plain, dropped = encoder(None), encoder({"blocks": "all", "rate": 0.5})
    assert plain.state_dict().keys() == dropped.state_dict().keys()
    dropped.load_state_dict(plain.state_dict())
    plain.eval(), dropped.eval()
    x, lengths = torch.randn(2, 10, 16), torch.tensor([10, 8])
    torch.testing.assert_close(dropped(x, lengths)[0], plain(x, lengths)[0])


def test_batch_norm_keeps_the_running_statistics_of_dropped_channels():
    enc = encoder({"blocks": [1], "rate": 0.5}, conv_norm="batch_norm")
    norm = enc.encoders[1].conv_module.norm
    before_mean, before_var = norm.running_mean.clone(), norm.running_var.clone()
    enc.train()
    backward(enc)
    conv = next(i for i, s in enumerate(enc.unit_dropout.spaces) if s.name == "1.conv_module")
    dropped = enc.unit_dropout.dropped_units()[conv]
    kept = torch.ones(32, dtype=torch.bool)
    kept[dropped] = False
    assert torch.equal(norm.running_mean[dropped], before_mean[dropped])
    assert torch.equal(norm.running_var[dropped], before_var[dropped])
    assert (norm.running_mean[kept] != before_mean[kept]).all()


def half_square(out):
    """A loss with real gradients inside the encoder: after its final LayerNorm the mean square over *all*
    dimensions is (nearly) constant, which leaves those gradients at rounding-noise size."""
    return out[..., : out.shape[-1] // 2].pow(2).mean()


def kept_conv_sub_model(full, kept):
    """ESPnet's convolution module with only the ``kept`` channels inside (GroupNorm of the same group count), the
    kept weights copied; the residual side stays. ``pointwise_conv2`` takes its kept columns scaled by C / kept,
    as the dropped model scales the kept channels it consumes."""
    channels, k = full.depthwise_conv.weight.shape[0], len(kept)
    small = ConvolutionModule(k, full.depthwise_conv.kernel_size[0], full.activation)
    small.pointwise_conv1 = nn.Conv1d(channels, 2 * k, 1)
    small.norm = nn.GroupNorm(full.norm.num_groups, k, eps=full.norm.eps)
    small.pointwise_conv2 = nn.Conv1d(k, channels, 1)
    both = torch.cat([kept, kept + channels])  # GLU value and gate rows
    with torch.no_grad():
        for name, rows in (("pointwise_conv1", both), ("depthwise_conv", kept), ("norm", kept)):
            for p in ("weight", "bias"):
                getattr(getattr(small, name), p).copy_(getattr(getattr(full, name), p)[rows])
        small.pointwise_conv2.weight.copy_(full.pointwise_conv2.weight[:, kept] * channels / k)
        small.pointwise_conv2.bias.copy_(full.pointwise_conv2.bias)
    return small


def test_group_norm_training_step_with_dropped_channels_is_the_sub_models_step():
    """conv_norm: group_norm (8 groups of 4 channels): the forward and the gradient of a training step with half the
    conv channels of block 1 dropped are those of the sub-model without them, whose GroupNorm(8, 16) keeps every
    channel in its group: each group loses the same number of channels and is normalised over its kept ones."""
    enc = encoder({"blocks": [1], "rate": 0.5, "modules": ["conv"]})
    sub = encoder(None)
    assert all(torch.equal(sub.state_dict()[k], v) for k, v in enc.state_dict().items())
    enc.train()
    sub.train()
    x, lengths = torch.randn(3, 20, 16), torch.tensor([20, 17, 12])
    out = enc(x, lengths)[0]
    (dropped,) = enc.unit_dropout.dropped_units()
    keep = torch.ones(32, dtype=torch.bool)
    keep[dropped] = False
    kept = keep.nonzero().squeeze(1)
    full = enc.encoders[1].conv_module
    sub.encoders[1].conv_module = small = kept_conv_sub_model(full, kept)

    sub_out = sub(x, lengths)[0]
    torch.testing.assert_close(out, sub_out, rtol=1e-5, atol=1e-5)
    half_square(out).backward()
    half_square(sub_out).backward()
    assert keep.view(8, 4).sum(1).tolist() == [2] * 8  # the sub-model's groups are the original ones, halved
    grads = dict(enc.named_parameters())
    for name, p in sub.named_parameters():  # everything outside the sub-model's conv module
        if not name.startswith("encoders.1.conv_module."):
            torch.testing.assert_close(grads[name].grad, p.grad, rtol=1e-4, atol=1e-7, msg=name)
    rows = {"pointwise_conv1": torch.cat([kept, kept + 32]), "depthwise_conv": kept, "norm": kept}
    for name, index in rows.items():
        for p in ("weight", "bias"):
            grad = getattr(getattr(full, name), p).grad
            torch.testing.assert_close(grad[index], getattr(getattr(small, name), p).grad, rtol=1e-4, atol=1e-7)
            assert (grad[~keep.repeat(len(index) // len(kept))] == 0).all()
    # w2' = w2 · C/kept in the sub-model: dL/dw2 = C/kept · dL/dw2'
    torch.testing.assert_close(full.pointwise_conv2.weight.grad[:, kept], small.pointwise_conv2.weight.grad * 2,
                               rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(full.pointwise_conv2.bias.grad, small.pointwise_conv2.bias.grad, rtol=1e-4, atol=1e-7)


def adamw_steps(enc, steps, hold):
    """``steps`` AdamW steps the way ESPnet's trainer takes them (scaler, unscale, clip, step); per step the
    dropped masks and the parameters and AdamW state before and after."""
    optimizer = torch.optim.AdamW(enc.parameters(), lr=1e-3, weight_decay=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0)
    with attached_step_hooks(step_hooks(enc) if hold else [], [optimizer], TrainingRun(enc)):  # as the trainer does
        return steps_taken(enc, optimizer, scaler, steps)


def steps_taken(enc, optimizer, scaler, steps):
    enc.train()
    record = []
    for step in range(steps):
        optimizer.zero_grad()
        torch.manual_seed(100 + step)
        out, _, _ = enc(torch.randn(3, 20, 16), torch.tensor([20, 17, 12]))
        scaler.scale(half_square(out)).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(enc.parameters(), 5.0)
        masks = held_masks(enc)
        snapshot = lambda: {n: (p.detach().clone(), {k: v.clone() for k, v in optimizer.state[p].items() if k != "step"})
                            for n, p in enc.named_parameters()}
        before = snapshot()
        scaler.step(optimizer)
        scaler.update()
        record.append((masks, before, snapshot()))
    return record


def test_dropped_entries_and_their_adamw_state_stay_bit_exact_over_several_steps():
    enc = encoder({"blocks": [1, 2], "rate": 0.5})
    record = adamw_steps(enc, 4, hold=True)
    draws = [record[i][0]["encoders.1.feed_forward.w_1.bias"] for i in range(4)]
    assert not all(torch.equal(draws[0], d) for d in draws[1:])  # a new sub-model each step
    for step, (masks, before, after) in enumerate(record):
        for name, dropped in masks.items():
            (p0, state0), (p1, state1) = before[name], after[name]
            assert torch.equal(p1[dropped], p0[dropped]), (step, name)
            assert (p1[~dropped] != p0[~dropped]).any(), (step, name)  # the kept entries learn
            for key in ("exp_avg", "exp_avg_sq"):
                old = state0.get(key, torch.zeros_like(p0))  # first step: untouched is AdamW's zero init
                assert torch.equal(state1[key][dropped], old[dropped]), (step, name, key)
                if step > 0 and dropped.any() and not name.endswith("linear_k.bias"):  # no gradient: see above
                    assert (state1[key][~dropped] != old[~dropped]).float().mean() > 0.9, (step, name, key)


def test_without_holding_adamw_moves_the_dropped_entries():
    enc = encoder({"blocks": [1], "rate": 0.5})
    record = adamw_steps(enc, 3, hold=False)
    name = "encoders.1.feed_forward.w_1.u"
    masks, before, after = record[-1]
    dropped = masks[name]
    assert (after[name][0][dropped] != before[name][0][dropped]).all()  # weight decay at least
    # entries that learned in step 1 and are dropped in step 3 move through their momentum
    momentum = dropped & ~record[0][0][name]
    moved = (after[name][0] - before[name][0])[momentum].abs()
    assert momentum.sum() > 100 and moved.median() > 4e-4  # about 5e-4 a step at lr 1e-3


def test_one_draw_per_optimizer_step_when_held_one_per_forward_otherwise():
    enc = encoder({"blocks": [0], "rate": 0.5})
    enc.train()
    draw = lambda: [u.clone() for u in enc.unit_dropout.dropped_units()]
    backward(enc)
    first = draw()
    backward(enc)
    assert not torch.equal(draw()[0], first[0])  # no optimizer: every forward is a step
    optimizer = torch.optim.AdamW(enc.parameters(), lr=1e-3)
    assert step_hooks(enc) == [enc.unit_dropout]  # the unit dropout module is the encoder's step hook
    run = TrainingRun(enc)
    enc.unit_dropout.attach([optimizer], run)
    backward(enc)
    held = draw()
    backward(enc)  # gradient accumulation: the same sub-model
    assert all(torch.equal(a, b) for a, b in zip(draw(), held))
    optimizer.step()
    backward(enc)
    assert not torch.equal(draw()[0], held[0])
    enc.unit_dropout.detach(run, completed=True)
    assert not enc.unit_dropout.held and not optimizer._optimizer_step_pre_hooks  # its optimizer hooks are gone
    backward(enc)
    first = draw()
    backward(enc)
    assert not torch.equal(draw()[0], first[0])  # every forward a step again


def test_flat_rate_drops_as_many_parameters_as_the_targeted_setting():
    enc = encoder(num_blocks=6, linear_units=256)  # linear FFN ranks [0.2, 0.6]: later blocks own more per unit
    for modules in (["mhsa", "ffn", "conv"], ["ffn"]):
        targeted = count_dropped(enc.encoders, [1, 4], 0.5, modules)
        flat = flat_rate_matching(enc.encoders, [1, 4], 0.5, modules)
        assert 0.1 < flat < 0.25
        miss = abs(count_dropped(enc.encoders, range(6), flat, modules) - targeted)
        assert miss <= 0.01 * targeted
        # no single rate does better: every dimension drops a whole number of units
        assert miss == min(abs(count_dropped(enc.encoders, range(6), k / 1024, modules) - targeted) for k in range(1024))


@pytest.mark.parametrize("option, message", [
    ({"blocks": [4], "rate": 0.5}, r"unit_dropout\.blocks: \[4\] not in 0 … 3"),
    ({"blocks": [1, 1], "rate": 0.5}, r"names a block twice"),
    ({"blocks": [], "rate": 0.5}, r"unit_dropout\.blocks: expected a non-empty list"),
    ({"blocks": [1], "rate": 1.0}, r"unit_dropout\.rate: expected a fraction in \[0, 1\), got 1\.0"),
    ({"blocks": [1]}, r"unit_dropout: expected \{blocks"),
    ({"blocks": [1], "rate": 0.5, "seed": 3}, r"unit_dropout: expected \{blocks"),
    ({"blocks": [1], "rate": 0.5, "modules": ["attn"]}, r"unit_dropout\.modules: unknown \['attn'\] in \['attn'\]"),
    ({"blocks": [1], "rate": 0.5, "modules": "ffn"}, r"unit_dropout\.modules: expected a non-empty list .* got 'ffn'"),
])
def test_bad_options_name_the_key_and_value(option, message):
    with pytest.raises(ValueError, match=message):
        encoder(option)


def test_old_and_new_key_together_are_refused():
    with pytest.raises(ValueError, match="unit_dropout or its old form ffn_unit_dropout, not both"):
        encoder({"blocks": [1], "rate": 0.5}, ffn_unit_dropout={"blocks": [1], "rate": 0.5})


def test_committed_three_way_configs_compare_like_with_like():
    from espnet_lrsms.asr.build import build_asr_model

    for directory, stem in (("analysis", "train_asr_conformer_lrsms"), ("demo", "train_asr_lrsms_tiny_6blocks")):
        plans = {}
        for kind in ("ambient", "critical", "flat"):
            config = REPO / "conf" / directory / f"{stem}_{kind}_dropout.yaml"
            assert yaml.safe_load(config.read_text())["encoder_conf"]["conv_norm"] == "group_norm"
            plans[kind] = build_asr_model(config, vocab_size=5000, device="meta").encoder.unit_dropout_plan
        assert plans["ambient"].rate == plans["critical"].rate
        assert set(plans["ambient"].blocks).isdisjoint(plans["critical"].blocks)
        # within 1 %: the demo's GroupNorm groups of 2 channels drop conv channels only from rate 0.25 on
        assert abs(plans["flat"].dropped_parameters - plans["ambient"].dropped_parameters) \
            <= 0.01 * plans["ambient"].dropped_parameters


@pytest.mark.end_to_end
def test_training_with_unit_dropout_through_espnets_trainer(tone_data, tmp_path, caplog):
    """A real epoch through ESPnet's trainer, in this process (the entry point's main)."""
    from espnet_lrsms.bin.asr_train import main

    out = tmp_path / "exp"
    caplog.set_level(logging.INFO)
    main(train_command(tone_data, out, "--max_epoch", "1",
                       "--encoder_conf", "unit_dropout={'blocks': [1], 'rate': 0.5}")[3:])
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["encoder_conf"]["unit_dropout"] == {"blocks": [1], "rate": 0.5}
    assert (out / "1epoch.pth").is_file()
    assert "encoder_conf.unit_dropout: blocks [1], rate 0.5, modules ['mhsa', 'ffn', 'conv']:" in caplog.text
    assert "no optimizer holds the dropped units" not in caplog.text  # the trainer held them
