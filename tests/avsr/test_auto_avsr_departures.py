"""Issue 11: small departures from Auto-AVSR (mpc001/auto_avsr), pinned with real numbers.

See docs/architecture_vs_auto_avsr.md for what Auto-AVSR does and where we still differ.
"""
import torch
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from espnet2.asr.preencoder.linear import LinearProjection
from espnet.nets.pytorch_backend.transformer.embedding import RelPositionalEncoding

from espnet_lrsms.asr.resnet1d_frontend import _z_normalize
from espnet_lrsms.asr.time_mask import AdaptiveTimeMask


def test_time_mask_count_is_ceil_of_length_over_stride():
    """Auto-AVSR: ``n_mask = int((L + stride - 0.1) // stride)`` = ceil(L / stride)."""
    mask = AdaptiveTimeMask(window=6400, stride=16000)
    assert mask.num_masks(19200) == 2  # 1.2 s: round() gave 1
    assert mask.num_masks(16000) == 1
    assert mask.num_masks(16001) == 2
    assert mask.num_masks(1) == 1
    assert mask.num_masks(0) == 0
    assert [mask.num_masks(n) for n in (24000, 32000, 40000, 80000)] == [2, 2, 3, 5]
    video = AdaptiveTimeMask(window=10, stride=25)  # Auto-AVSR's video setting, 25 frames/s
    assert [video.num_masks(n) for n in (25, 26, 30, 37, 38)] == [1, 2, 2, 2, 2]


def test_time_mask_on_1_2_s_clips_zeroes_more_than_one_window():
    """One mask zeroes at most window - 1 = 6399 samples; a 1.2 s clip gets two, so some rows
    of a batch of 200 lose more than 6399 samples (never more than 2 × 6399)."""
    torch.manual_seed(0)
    mask = AdaptiveTimeMask(window=6400, stride=16000).train()
    out, _ = mask(torch.ones(200, 19200), torch.full((200,), 19200))
    zeroed = (out == 0).sum(1)
    assert int(zeroed.max()) > 6399
    assert int(zeroed.max()) <= 2 * 6399


def test_z_normalisation_keeps_quiet_utterances_at_unit_std():
    """Auto-AVSR: ``layer_norm(x, x.shape, eps=1e-8)`` over the utterance, i.e.
    ``(x - mean) / sqrt(var + 1e-8)``; with eps 1e-5 an RMS-0.003 utterance came out at std 0.69."""
    torch.manual_seed(0)
    quiet = torch.randn(16000)
    quiet = 0.003 * (quiet - quiet.mean()) / quiet.std(unbiased=False)  # RMS 0.003
    loud = 0.3 * torch.randn(24000)
    x = torch.zeros(2, 24000)
    x[0, :16000], x[1] = quiet, loud
    lengths = torch.tensor([16000, 24000])
    mask = torch.arange(24000)[None, :] < lengths[:, None]
    y = _z_normalize(x, mask, lengths)
    valid = y[0, :16000]
    assert abs(float(valid.std(unbiased=False)) - 1.0) < 1e-3
    assert abs(float(valid.mean())) < 1e-4
    for row, length in ((0, 16000), (1, 24000)):  # padding excluded; matches Auto-AVSR per utterance
        auto_avsr = torch.nn.functional.layer_norm(x[row, :length], (length,), eps=1e-8)
        torch.testing.assert_close(y[row, :length], auto_avsr, atol=1e-5, rtol=1e-5)


def test_espnet_linear_input_layer_is_not_auto_avsr_projection():
    """ESPnet 202511 ``input_layer: linear`` = Linear, LayerNorm, Dropout, positional encoding;
    Auto-AVSR's is Linear then positional encoding, which ESPnet gives only as
    ``preencoder: linear`` + ``input_layer: null`` (see docs/architecture_vs_auto_avsr.md)."""
    kwargs = dict(output_size=8, attention_heads=2, linear_units=16, num_blocks=1,
                  rel_pos_type="latest", pos_enc_layer_type="rel_pos", selfattention_layer_type="rel_selfattn")
    linear = ConformerEncoder(4, input_layer="linear", **kwargs)
    assert [type(m) for m in linear.embed] == [
        torch.nn.Linear, torch.nn.LayerNorm, torch.nn.Dropout, RelPositionalEncoding
    ]
    bare = ConformerEncoder(8, input_layer=None, **kwargs)
    assert [type(m) for m in bare.embed] == [RelPositionalEncoding]
    projection = LinearProjection(4, 8)  # dropout 0.0 by default: a plain nn.Linear
    assert [type(m) for m in projection.children()] == [torch.nn.Linear, torch.nn.Dropout]
    assert projection.dropout.p == 0.0
