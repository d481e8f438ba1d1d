"""GroupNorm instead of BatchNorm in the Conformer convolution module (encoder_conf.conv_norm)."""
import inspect

import pytest
import torch
import yaml
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from torch import nn

from espnet_lrsms.asr.lowrank_conformer_encoder import LowRankConformerEncoder
from espnet_lrsms.asr.build import build_asr_model

from conftest import REPO

torch.set_num_threads(1)

SMALL = dict(
    output_size=16, attention_heads=2, linear_units=32, num_blocks=2, input_layer="linear", macaron_style=True,
    rel_pos_type="latest", cnn_module_kernel=3, dropout_rate=0.0, positional_dropout_rate=0.0,
)


def encoder(**kwargs):
    torch.manual_seed(0)
    return LowRankConformerEncoder(8, **SMALL, **kwargs)


def test_default_is_espnets_batch_norm_unchanged():
    default = encoder(lowrank={"mhsa": 0.5})
    assert all(isinstance(b.conv_module.norm, nn.BatchNorm1d) for b in default.encoders)
    torch.manual_seed(0)
    plain = ConformerEncoder(8, **SMALL)
    dense = encoder()  # no lowrank, default conv_norm: the same weights as ESPnet's own encoder
    assert dense.state_dict().keys() == plain.state_dict().keys()
    for key, value in plain.state_dict().items():
        assert torch.equal(dense.state_dict()[key], value), key
    params = inspect.signature(LowRankConformerEncoder.__init__).parameters
    assert params["conv_norm"].default == "batch_norm" and params["conv_norm_groups"].default == 32


def test_group_norm_replaces_every_conv_module_norm():
    enc = encoder(conv_norm="group_norm", conv_norm_groups=4, lowrank={"mhsa": 0.5, "ffn": 0.5})
    norms = [b.conv_module.norm for b in enc.encoders]
    assert all(isinstance(n, nn.GroupNorm) and (n.num_groups, n.num_channels) == (4, 16) for n in norms)
    keys = [k for k in enc.state_dict() if ".conv_module.norm." in k]
    assert sorted(keys) == sorted(f"encoders.{b}.conv_module.norm.{p}" for b in (0, 1) for p in ("weight", "bias"))

    # GroupNorm on (B, C, T): each utterance, each group of 4 channels, over channels and time
    x = torch.randn(3, 16, 7)
    norms[0].weight.data.uniform_(0.5, 1.5)
    groups = x.reshape(3, 4, 4 * 7)
    manual = ((groups - groups.mean(-1, keepdim=True)) / (groups.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt())
    manual = manual.reshape(3, 16, 7) * norms[0].weight[:, None] + norms[0].bias[:, None]
    torch.testing.assert_close(norms[0](x), manual)

    # no batch statistics: in training mode too, an utterance gives the same output alone or in a batch
    enc.train()
    speech = torch.randn(2, 10, 8)
    lengths = torch.tensor([10, 10])
    both, _, _ = enc(speech, lengths)
    alone, _, _ = enc(speech[:1], lengths[:1])
    torch.testing.assert_close(alone[0], both[0])
    both.sum().backward()
    assert norms[1].weight.grad is not None and norms[1].weight.grad.abs().sum() > 0

    bn = encoder()
    bn.train()
    both_bn, _, _ = bn(speech, lengths)
    alone_bn, _, _ = bn(speech[:1], lengths[:1])
    assert not torch.allclose(alone_bn[0], both_bn[0])  # BatchNorm: the other utterance matters


def test_bad_values_name_the_key():
    with pytest.raises(ValueError, match=r"encoder_conf\.conv_norm: unknown 'layer_norm'"):
        encoder(conv_norm="layer_norm")
    with pytest.raises(ValueError, match=r"encoder_conf\.conv_norm_groups: 5 does not divide .* 16 channels"):
        encoder(conv_norm="group_norm", conv_norm_groups=5)
    with pytest.raises(ValueError, match=r"encoder_conf\.conv_norm_groups: expected a positive integer"):
        encoder(conv_norm="group_norm", conv_norm_groups=0)
    with pytest.raises(Exception, match="conv_norm_groups"):  # typeguard: not an int
        encoder(conv_norm="group_norm", conv_norm_groups="4")


def test_through_espnet_config_and_checkpoint_guard(tmp_path):
    conf = yaml.safe_load((REPO / "conf" / "demo" / "train_asr_lrsms_tiny.yaml").read_text())
    conf["encoder_conf"].update(conv_norm="group_norm")  # default 32 groups of the 64 channels
    path = tmp_path / "gn.yaml"
    path.write_text(yaml.safe_dump(conf))
    model = build_asr_model(path, vocab_size=12, device="meta")
    norm = model.encoder.encoders[1].conv_module.norm
    assert isinstance(norm, nn.GroupNorm) and (norm.num_groups, norm.num_channels) == (32, 64)
    assert model.encoder.encoders[0].self_attn.linear_q.rank == 16  # the low-rank schedule still applies

    from espnet2.utils.get_default_kwargs import get_default_kwargs

    defaults = get_default_kwargs(LowRankConformerEncoder)  # what ESPnet's --print_config shows
    assert defaults["conv_norm"] == "batch_norm" and defaults["conv_norm_groups"] == 32

    # a batch-norm checkpoint does not load silently into a group-norm encoder (running stats left over)
    bn_state = encoder().state_dict()
    gn = encoder(conv_norm="group_norm", conv_norm_groups=4)
    with pytest.raises(RuntimeError, match="does not match the structure"):
        gn.load_state_dict(bn_state, strict=False)
