"""One Vᵀx product for the factorized q, k, v that read the same input: same outputs, same keys."""
import copy
import io

import pytest
import torch
from torch import nn

from espnet_lrsms.asr.lowrank_blocks import SharedInputQKV
from espnet_lrsms.asr.lowrank_conformer_encoder import LowRankConformerEncoder
from espnet_lrsms.asr.lowrank_transformer_decoder import LowRankTransformerDecoder
from espnet_lrsms.lowrank import FactorizedLinear, shared_input_linears


def _unfused(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose attention modules use ESPnet's own forward_qkv."""
    model = copy.deepcopy(model)
    for module in model.modules():
        module.__dict__.pop("forward_qkv", None)
    return model


def _encoder():
    return LowRankConformerEncoder(
        16, output_size=32, attention_heads=2, linear_units=64, num_blocks=2, input_layer="linear",
        macaron_style=True, dropout_rate=0.0, positional_dropout_rate=0.0, attention_dropout_rate=0.0,
        pos_enc_layer_type="rel_pos", selfattention_layer_type="rel_selfattn", rel_pos_type="latest",
        use_cnn_module=True, cnn_module_kernel=5, lowrank={"mhsa": [0.2, 0.5], "ffn": 0.5},
    )


def _decoder():
    return LowRankTransformerDecoder(
        20, 32, attention_heads=2, linear_units=64, num_blocks=2, dropout_rate=0.0,
        positional_dropout_rate=0.0, self_attention_dropout_rate=0.0, src_attention_dropout_rate=0.0,
        lowrank={"mhsa": 0.25, "ffn": 0.5},
    )


def test_shared_input_linears_equal_the_layers_outputs_and_gradients():
    torch.manual_seed(0)
    layers = [FactorizedLinear(12, 10, 3), FactorizedLinear(12, 10, 5, bias=False), nn.Linear(12, 10),
              FactorizedLinear(12, 10, 4)]
    x, other = torch.randn(2, 7, 12, requires_grad=True), torch.randn(2, 7, 12, requires_grad=True)
    inputs = (x, x, x, other)
    fused = shared_input_linears(layers, inputs)
    sum((o ** 2).sum() for o in fused).backward()
    grads = [p.grad.clone() for p in [x, other] + [p for m in layers for p in m.parameters()]]
    for p in [x, other] + [p for m in layers for p in m.parameters()]:
        p.grad = None
    plain = [layer(t) for layer, t in zip(layers, inputs)]
    sum((o ** 2).sum() for o in plain).backward()
    for a, b in zip(fused, plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for g, p in zip(grads, [x, other] + [p for m in layers for p in m.parameters()]):
        torch.testing.assert_close(g, p.grad, rtol=1e-4, atol=1e-5)  # summation order differs


def test_shared_input_linears_runs_hooks():
    layers = [FactorizedLinear(8, 8, 2), FactorizedLinear(8, 8, 2)]
    calls = []
    layers[1].register_forward_hook(lambda m, i, o: calls.append(m))
    x = torch.randn(3, 8)
    shared_input_linears(layers, (x, x))
    assert calls == [layers[1]]


def test_encoder_and_decoder_fuse_and_compute_what_the_unfused_ones_do():
    torch.manual_seed(0)
    encoder, decoder = _encoder().eval(), _decoder().eval()
    fused = [m for m in list(encoder.modules()) + list(decoder.modules()) if isinstance(m.__dict__.get("forward_qkv"), SharedInputQKV)]
    assert len(fused) == 2 + 2 * 2  # encoder self-attention; decoder self- and source attention
    speech, lengths = torch.randn(2, 20, 16), torch.tensor([20, 15])
    tokens, token_lengths = torch.randint(0, 20, (2, 6)), torch.tensor([6, 4])
    with torch.no_grad():
        memory, memory_lengths, _ = encoder(speech, lengths)
        out = decoder(memory, memory_lengths, tokens, token_lengths)[0]
        ref_memory, _, _ = _unfused(encoder)(speech, lengths)
        ref_out = _unfused(decoder)(memory, memory_lengths, tokens, token_lengths)[0]
    torch.testing.assert_close(memory, ref_memory, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("build", [_encoder, _decoder])
def test_checkpoints_keep_their_keys_and_load_both_ways(build):
    torch.manual_seed(0)
    model = build()
    unfused = _unfused(model)
    assert list(model.state_dict()) == list(unfused.state_dict())
    buffer = io.BytesIO()
    torch.save(unfused.state_dict(), buffer)  # a checkpoint written before the fusion
    buffer.seek(0)
    torch.manual_seed(1)
    fresh = build()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    for a, b in zip(fresh.state_dict().values(), model.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert isinstance(copy.deepcopy(fresh).encoders[0].self_attn.forward_qkv if hasattr(fresh, "encoders")
                      else copy.deepcopy(fresh).decoders[0].self_attn.forward_qkv, SharedInputQKV)


def test_an_expanded_input_is_projected_once_with_the_same_result():
    torch.manual_seed(0)
    layers = [FactorizedLinear(12, 10, 3), FactorizedLinear(12, 10, 4), nn.Linear(12, 10)]
    memory = torch.randn(1, 7, 12).expand(5, 7, 12)  # as beam search passes the encoder output
    outs = shared_input_linears(layers, (memory, memory, memory))
    for out, layer in zip(outs, layers):
        assert out.stride(0) == 0
        torch.testing.assert_close(out, layer(memory.contiguous()), rtol=1e-5, atol=1e-6)


def test_beam_search_scores_equal_espnets_own_attention_for_low_rank_and_dense_decoders():
    from espnet_lrsms.asr.lowrank_blocks import fuse_shared_input_projections

    torch.manual_seed(0)
    decoder = _decoder().eval()
    dense = LowRankTransformerDecoder(20, 32, attention_heads=2, linear_units=64, num_blocks=2).eval()
    assert fuse_shared_input_projections(dense) == 0 and fuse_shared_input_projections(dense, dense=True) == 4
    memory = torch.randn(8, 32).expand(3, 8, 32)
    ys = torch.tensor([[19, 4, 7], [19, 4, 2], [19, 5, 1]])
    for model in (decoder, dense):
        with torch.no_grad():
            score, _ = model.batch_score(ys, [None] * 3, memory)
            ref, _ = _unfused(model).batch_score(ys, [None] * 3, memory)
        torch.testing.assert_close(score, ref, rtol=1e-5, atol=1e-5)
