"""The low-rank encoder and decoder under the option matrix of ESPnet's own unit tests.

ESPnet tests ``ConformerEncoder`` over input layers (linear, conv2d, conv2d1, conv2d2, conv2d6,
conv2d8, embed), positional encodings / self-attention types (abs_pos + selfattn, rel_pos +
rel_selfattn with the latest and the legacy rel_pos_type, legacy_rel_pos + legacy_rel_selfattn),
feed-forward types (conv1d, conv1d-linear), interCTC layers with and without conditioning and
stochastic depth; and ``TransformerDecoder`` over input layers (linear, embed), normalize_before,
use_output_layer, ``score`` and (batch) beam search, with a CTC prefix scorer in the online variant
(test/espnet2/asr/encoder/test_conformer_encoder.py, test/espnet2/asr/decoder/
test_transformer_decoder.py in espnet/espnet). Here every case is run with a non-dense ``lowrank``
schedule and checked against ESPnet's own class built with the same options; the options ESPnet's
tests leave out but 202511 accepts (positionwise ``linear``, macaron style, layer drop,
concat_after) are added.

Sizes: output_size 16, linear_units 32, 2 blocks. With ``mhsa: [0.25, 0.5]`` (linear schedule,
α_b = 0.25 + b·0.25/2) the 16×16 attention linears get ranks 4 (block 0) and 6 (block 1); with
``ffn: 0.5`` the 16↔32 feed-forward linears get rank 8 in both blocks.
"""
import logging

import pytest
import torch
from torch import nn

import espnet_lrsms  # noqa: F401  (registers the classes with ESPnet)
from espnet.nets.batch_beam_search import BatchBeamSearch
from espnet.nets.beam_search import BeamSearch
from espnet.nets.scorers.ctc import CTCPrefixScorer
from espnet2.asr.ctc import CTC
from espnet2.asr.decoder.transformer_decoder import TransformerDecoder
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from espnet_lrsms.asr.lowrank_conformer_encoder import LowRankConformerEncoder
from espnet_lrsms.asr.lowrank_transformer_decoder import LowRankTransformerDecoder
from espnet_lrsms.lowrank import FactorizedLinear
from espnet_lrsms.nets.espnet_names import (
    BLOCK_MODULE_TYPES,
    BLOCK_STACKS,
    CONV_MODULE,
    DECODER_BLOCK_MODULES,
    ENCODER_BLOCK_MODULES,
    TRANSFORMER_LINEARS,
)

IDIM = 20
ODIM = 16
UNITS = 32
HEADS = 2
BLOCKS = 2
VOCAB = 7  # <blank> a b c d unk <sos/eos>
LOWRANK = {"mhsa": [0.25, 0.5], "ffn": 0.5}
MHSA_RANKS = (4, 6)  # round(16·0.25), round(16·0.375)
FFN_RANK = 8  # round(min(16, 32)·0.5)
FULL_RANK = {"mhsa": 1.0, "ffn": 1.0, "init": "svd"}

POS_ENC = [
    # (rel_pos_type, pos_enc_layer_type, selfattention_layer_type), as in ESPnet's test
    ("legacy", "abs_pos", "selfattn"),
    ("latest", "rel_pos", "rel_selfattn"),
    ("legacy", "rel_pos", "rel_selfattn"),
    ("legacy", "legacy_rel_pos", "legacy_rel_selfattn"),
]
INPUT_LAYERS = ["linear", "conv2d", "conv2d1", "conv2d2", "conv2d6", "conv2d8", "embed"]
INTERCTC = [([], False), ([1], False), ([1], True)]


# ---------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The models are tiny: intra-op threads only add overhead (and contend on a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def encoder_kwargs(**options):
    kwargs = dict(
        output_size=ODIM,
        attention_heads=HEADS,
        linear_units=UNITS,
        num_blocks=BLOCKS,
        input_layer="conv2d",
        rel_pos_type="latest",
        pos_enc_layer_type="rel_pos",
        selfattention_layer_type="rel_selfattn",
        activation_type="swish",
        use_cnn_module=True,
        cnn_module_kernel=3,
    )
    kwargs.update(options)
    return kwargs


def build_encoders(lowrank, seed=0, **options):
    """ESPnet's ConformerEncoder and ours, from the same seed and options."""
    kwargs = encoder_kwargs(**options)
    torch.manual_seed(seed)
    dense = ConformerEncoder(IDIM, **kwargs)
    torch.manual_seed(seed)
    lowrank_enc = LowRankConformerEncoder(IDIM, lowrank=lowrank, **kwargs)
    return dense, lowrank_enc


def encoder_input(input_layer, requires_grad=False):
    torch.manual_seed(1)
    if input_layer == "embed":
        x = torch.randint(0, IDIM, (2, 32))
    else:
        x = torch.randn(2, 32, IDIM, requires_grad=requires_grad)
    return x, torch.tensor([32, 28], dtype=torch.long)


def build_decoders(lowrank, seed=0, vocab=VOCAB, **options):
    kwargs = dict(attention_heads=HEADS, linear_units=UNITS, num_blocks=BLOCKS)
    kwargs.update(options)
    torch.manual_seed(seed)
    dense = TransformerDecoder(vocab, ODIM, **kwargs)
    torch.manual_seed(seed)
    lowrank_dec = LowRankTransformerDecoder(vocab, ODIM, lowrank=lowrank, **kwargs)
    return dense, lowrank_dec


def factorized(module):
    return {name: m for name, m in module.named_modules() if isinstance(m, FactorizedLinear)}


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def attach_conditioning(encoders, seed=2):
    """What ESPnetASRModel does for interctc_use_conditioning: one CTC and a vocab→d linear."""
    torch.manual_seed(seed)
    ctc = CTC(odim=VOCAB, encoder_output_size=ODIM)
    conditioning = nn.Linear(VOCAB, ODIM)
    for enc in encoders:
        enc.conditioning_layer = conditioning
    return ctc


def split_encoder_output(out, interctc_layer_idx):
    if interctc_layer_idx:
        assert isinstance(out, tuple), "interCTC must return (output, intermediate outputs)"
        return out
    assert isinstance(out, torch.Tensor)
    return out, []


def assert_ffn_factorization(ffn, positionwise_layer_type, where):
    if ffn is None:
        return
    inner = factorized(ffn)
    if positionwise_layer_type == "linear":
        assert isinstance(ffn.w_1, FactorizedLinear) and isinstance(ffn.w_2, FactorizedLinear), where
        assert (ffn.w_1.rank, ffn.w_2.rank) == (FFN_RANK, FFN_RANK), where
        assert (ffn.w_1.in_features, ffn.w_1.out_features) == (ODIM, UNITS), where
    elif positionwise_layer_type == "conv1d":
        # MultiLayeredConv1d: two convolutions, nothing to factorize
        assert isinstance(ffn.w_1, nn.Conv1d) and isinstance(ffn.w_2, nn.Conv1d), where
        assert inner == {}, where
    else:  # conv1d-linear: a convolution then a linear; only the linear is factorized
        assert isinstance(ffn.w_1, nn.Conv1d), where
        assert isinstance(ffn.w_2, FactorizedLinear) and ffn.w_2.rank == FFN_RANK, where
        assert set(inner) == {"w_2"}, where


def assert_encoder_factorization(enc, positionwise_layer_type="linear", macaron_style=False, rel=True):
    attn_names = ["linear_q", "linear_k", "linear_v", "linear_out"] + (["linear_pos"] if rel else [])
    for b, block in enumerate(enc.encoders):
        for name in attn_names:
            layer = getattr(block.self_attn, name)
            assert isinstance(layer, FactorizedLinear), f"block {b} self_attn.{name} is dense"
            assert layer.rank == MHSA_RANKS[b], f"block {b} self_attn.{name}: rank {layer.rank}"
        assert set(factorized(block.self_attn)) == set(attn_names)
        assert_ffn_factorization(block.feed_forward, positionwise_layer_type, f"block {b} feed_forward")
        if macaron_style:
            assert block.feed_forward_macaron is not None
            assert_ffn_factorization(
                block.feed_forward_macaron, positionwise_layer_type, f"block {b} feed_forward_macaron"
            )
        else:
            assert block.feed_forward_macaron is None
        assert factorized(block.conv_module) == {}, "the convolution module must stay dense"
    assert factorized(enc.embed) == {}, "the input layer must stay dense"


def assert_decoder_factorization(dec):
    for b, block in enumerate(dec.decoders):
        for attn in ("self_attn", "src_attn"):
            for name in ("linear_q", "linear_k", "linear_v", "linear_out"):
                layer = getattr(getattr(block, attn), name)
                assert isinstance(layer, FactorizedLinear), f"block {b} {attn}.{name} is dense"
                assert layer.rank == MHSA_RANKS[b]
        for name in ("w_1", "w_2"):
            layer = getattr(block.feed_forward, name)
            assert isinstance(layer, FactorizedLinear) and layer.rank == FFN_RANK
    assert factorized(dec.embed) == {}
    if dec.output_layer is not None:
        assert isinstance(dec.output_layer, nn.Linear)


def run_encoder_pair(dense, lowrank_enc, input_layer, interctc_layer_idx, ctc, train):
    x, lens = encoder_input(input_layer, requires_grad=train)
    outs = []
    for enc in (dense, lowrank_enc):
        enc.train(train)
        torch.manual_seed(3)  # same stochastic-depth / layer-drop / dropout draws
        with torch.set_grad_enabled(train):
            out, olens, _ = enc(x, lens, ctc=ctc)
        outs.append((*split_encoder_output(out, interctc_layer_idx), olens))
    return x, outs


# ---------------------------------------------------------------------------- encoder
@pytest.mark.parametrize("input_layer", INPUT_LAYERS)
@pytest.mark.parametrize("rel_pos_type, pos_enc_layer_type, selfattention_layer_type", POS_ENC)
def test_encoder_input_layers_and_attention_types(
    input_layer, rel_pos_type, pos_enc_layer_type, selfattention_layer_type
):
    options = dict(
        input_layer=input_layer,
        rel_pos_type=rel_pos_type,
        pos_enc_layer_type=pos_enc_layer_type,
        selfattention_layer_type=selfattention_layer_type,
    )
    dense, lowrank_enc = build_encoders(LOWRANK, **options)
    assert_encoder_factorization(lowrank_enc, rel=selfattention_layer_type != "selfattn")
    assert num_params(lowrank_enc) < num_params(dense)
    assert type(lowrank_enc.embed) is type(dense.embed)

    x, [(y_d, _, len_d), (y_l, _, len_l)] = run_encoder_pair(dense, lowrank_enc, input_layer, [], None, True)
    assert y_l.shape == y_d.shape and y_l.shape[-1] == ODIM
    assert torch.equal(len_l, len_d)
    assert torch.isfinite(y_l).all()
    y_l.sum().backward()
    for name, layer in factorized(lowrank_enc).items():
        assert layer.u.grad is not None and layer.vt.grad is not None, name
    if input_layer != "embed":
        assert x.grad is not None


DEPTH = [
    # (stochastic_depth_rate, layer_drop_rate): ESPnet's three stochastic-depth values, plus layer drop
    (0.0, 0.0),
    (0.1, 0.0),
    ([0.1, 0.2], 0.0),
    (0.0, 0.5),
]


@pytest.mark.parametrize("positionwise_layer_type", ["linear", "conv1d", "conv1d-linear"])
@pytest.mark.parametrize("macaron_style", [False, True])
@pytest.mark.parametrize("init", ["svd", "kaiming"])
def test_encoder_feed_forward_types(positionwise_layer_type, macaron_style, init):
    options = dict(positionwise_layer_type=positionwise_layer_type, macaron_style=macaron_style)
    dense, lowrank_enc = build_encoders({**LOWRANK, "init": init}, **options)
    assert_encoder_factorization(lowrank_enc, positionwise_layer_type, macaron_style)
    assert {layer.init_scheme for layer in factorized(lowrank_enc).values()} == {init}
    assert num_params(lowrank_enc) < num_params(dense)

    _, [(y_d, _, len_d), (y_l, _, len_l)] = run_encoder_pair(dense, lowrank_enc, "conv2d", [], None, True)
    assert y_l.shape == y_d.shape
    assert torch.equal(len_l, len_d)
    y_l.sum().backward()
    for name, layer in factorized(lowrank_enc).items():
        assert layer.u.grad is not None and layer.vt.grad is not None, name
    for name, p in lowrank_enc.named_parameters():
        if ".feed_forward" in name and (".w_1." in name or ".w_2." in name) and not name.endswith((".u", ".vt")):
            assert p.grad is not None, name  # dense conv1d FFN weights and all biases still train


@pytest.mark.parametrize("positionwise_layer_type, warns", [("conv1d", True), ("conv1d-linear", False), ("linear", False)])
def test_a_schedule_that_matches_no_linear_layer_warns_naming_its_key(positionwise_layer_type, warns, caplog):
    with caplog.at_level(logging.WARNING, logger="espnet_lrsms"):
        _, lowrank_enc = build_encoders({"ffn": 0.25}, positionwise_layer_type=positionwise_layer_type, macaron_style=True)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "matches no linear layer" in r.getMessage()]
    if warns:
        assert factorized(lowrank_enc) == {}
        assert len(warnings) == 1
        assert warnings[0].getMessage().startswith("encoder_conf.lowrank.ffn: the schedule matches no linear layer")
        assert "feed_forward or feed_forward_macaron" in warnings[0].getMessage()
    else:
        assert factorized(lowrank_enc) != {}
        assert warnings == []


def test_the_name_map_matches_espnets_blocks():
    """nets/espnet_names.py against ESPnet's own encoder and decoder blocks."""
    dense_enc, _ = build_encoders(None, macaron_style=True)
    dense_dec, _ = build_decoders(None)
    for model, submodel, modules in ((dense_enc, "encoder", ENCODER_BLOCK_MODULES), (dense_dec, "decoder", DECODER_BLOCK_MODULES)):
        block = getattr(model, BLOCK_STACKS[submodel])[0]
        for module_type, names in modules.items():
            for name in names:
                assert isinstance(getattr(block, name), nn.Module), (submodel, name)
                assert BLOCK_MODULE_TYPES[name] == module_type
    assert isinstance(getattr(dense_enc.encoders[0], CONV_MODULE), nn.Module)
    assert BLOCK_MODULE_TYPES[CONV_MODULE] == "conv"
    linears = {name.rpartition(".")[2] for name, m in dense_dec.decoders[0].named_modules() if isinstance(m, nn.Linear)}
    assert linears == set(TRANSFORMER_LINEARS)


DEPTH = [
    # (stochastic_depth_rate, layer_drop_rate): ESPnet's three stochastic-depth values, plus layer drop
    (0.0, 0.0),
    (0.1, 0.0),
    ([0.1, 0.2], 0.0),
    (0.0, 0.5),
]


@pytest.mark.parametrize("interctc_layer_idx, interctc_use_conditioning", INTERCTC)
@pytest.mark.parametrize("stochastic_depth_rate, layer_drop_rate", DEPTH)
def test_encoder_interctc_and_depth(
    interctc_layer_idx, interctc_use_conditioning, stochastic_depth_rate, layer_drop_rate
):
    options = dict(
        macaron_style=True,
        interctc_layer_idx=interctc_layer_idx,
        interctc_use_conditioning=interctc_use_conditioning,
        stochastic_depth_rate=stochastic_depth_rate,
        layer_drop_rate=layer_drop_rate,
    )
    dense, lowrank_enc = build_encoders(LOWRANK, **options)
    assert_encoder_factorization(lowrank_enc, "linear", macaron_style=True)
    assert lowrank_enc.interctc_layer_idx == interctc_layer_idx
    ctc = attach_conditioning([dense, lowrank_enc]) if interctc_use_conditioning else None

    _, [(y_d, inter_d, len_d), (y_l, inter_l, len_l)] = run_encoder_pair(
        dense, lowrank_enc, "conv2d", interctc_layer_idx, ctc, True
    )
    assert y_l.shape == y_d.shape
    assert torch.equal(len_l, len_d)
    assert [i for i, _ in inter_l] == [i for i, _ in inter_d] == interctc_layer_idx
    for (_, h_l), (_, h_d) in zip(inter_l, inter_d):
        assert h_l.shape == h_d.shape == y_l.shape
    loss = y_l.sum() + sum(h.sum() for _, h in inter_l)
    loss.backward()
    if layer_drop_rate == 0.0 and stochastic_depth_rate == 0.0:
        for name, layer in factorized(lowrank_enc).items():
            assert layer.u.grad is not None, name
    if interctc_use_conditioning:
        assert lowrank_enc.conditioning_layer.weight.grad is not None

    # in eval mode stochastic depth and layer drop are off: every block runs, deterministically
    _, [(e_d, _, _), (e_l, _, _)] = run_encoder_pair(dense, lowrank_enc, "conv2d", interctc_layer_idx, ctc, False)
    _, [_, (e_l2, _, _)] = run_encoder_pair(dense, lowrank_enc, "conv2d", interctc_layer_idx, ctc, False)
    assert e_l.shape == e_d.shape
    assert torch.equal(e_l, e_l2)


@pytest.mark.parametrize(
    "options",
    [
        dict(input_layer="linear", rel_pos_type="legacy", pos_enc_layer_type="abs_pos",
             selfattention_layer_type="selfattn"),
        dict(input_layer="conv2d", positionwise_layer_type="conv1d-linear", macaron_style=True),
        dict(input_layer="conv2d2", rel_pos_type="legacy", pos_enc_layer_type="rel_pos",
             selfattention_layer_type="rel_selfattn", macaron_style=True),
        dict(input_layer="conv2d6", rel_pos_type="legacy", pos_enc_layer_type="legacy_rel_pos",
             selfattention_layer_type="legacy_rel_selfattn", positionwise_layer_type="conv1d"),
        dict(input_layer="embed", interctc_layer_idx=[1], interctc_use_conditioning=True,
             macaron_style=True, stochastic_depth_rate=0.1, layer_drop_rate=0.2),
        dict(input_layer="conv2d8", concat_after=True, normalize_before=False, interctc_layer_idx=[1]),
    ],
    ids=["abs_pos", "conv1d-linear-macaron", "legacy-rel_pos", "legacy_rel_pos-conv1d",
         "embed-interctc-cond", "concat_after-post_norm"],
)
def test_encoder_svd_full_rank_equals_dense(options):
    dense, lowrank_enc = build_encoders(FULL_RANK, **options)
    assert len(factorized(lowrank_enc)) > 0
    for layer in factorized(lowrank_enc).values():
        assert layer.rank == min(layer.in_features, layer.out_features)
    interctc_layer_idx = options.get("interctc_layer_idx", [])
    ctc = attach_conditioning([dense, lowrank_enc]) if options.get("interctc_use_conditioning") else None
    _, [(y_d, inter_d, len_d), (y_l, inter_l, len_l)] = run_encoder_pair(
        dense, lowrank_enc, options["input_layer"], interctc_layer_idx, ctc, False
    )
    assert torch.equal(len_l, len_d)
    torch.testing.assert_close(y_l, y_d, rtol=0, atol=1e-5)
    assert len(inter_l) == len(inter_d) == len(interctc_layer_idx)
    for (_, h_l), (_, h_d) in zip(inter_l, inter_d):
        torch.testing.assert_close(h_l, h_d, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------- decoder
@pytest.mark.parametrize("input_layer", ["linear", "embed"])
@pytest.mark.parametrize("normalize_before", [True, False])
@pytest.mark.parametrize("use_output_layer", [True, False])
@pytest.mark.parametrize("concat_after, layer_drop_rate", [(False, 0.0), (True, 0.3)])
def test_decoder_forward_backward(input_layer, normalize_before, use_output_layer, concat_after, layer_drop_rate):
    options = dict(
        input_layer=input_layer,
        normalize_before=normalize_before,
        use_output_layer=use_output_layer,
        concat_after=concat_after,
        layer_drop_rate=layer_drop_rate,
    )
    dense, lowrank_dec = build_decoders(LOWRANK, vocab=10, **options)
    assert_decoder_factorization(lowrank_dec)
    assert num_params(lowrank_dec) < num_params(dense)

    torch.manual_seed(1)
    hs = torch.randn(2, 9, ODIM)
    hlens = torch.tensor([9, 7], dtype=torch.long)
    ys = torch.randint(0, 10, (2, 4)) if input_layer == "embed" else torch.randn(2, 4, 10)
    ylens = torch.tensor([4, 3], dtype=torch.long)
    outs = []
    for dec in (dense, lowrank_dec):
        dec.train()
        torch.manual_seed(3)
        outs.append(dec(hs, hlens, ys, ylens))
    (z_d, olens_d), (z_l, olens_l) = outs
    assert z_l.shape == z_d.shape == (2, 4, 10 if use_output_layer else ODIM)
    assert torch.equal(olens_l, olens_d)
    z_l.sum().backward()
    if layer_drop_rate == 0.0:
        for name, layer in factorized(lowrank_dec).items():
            assert layer.u.grad is not None and layer.vt.grad is not None, name


@pytest.mark.parametrize("input_layer", ["linear", "embed"])
@pytest.mark.parametrize("normalize_before, concat_after", [(True, False), (False, True)])
def test_decoder_svd_full_rank_equals_dense(input_layer, normalize_before, concat_after):
    dense, lowrank_dec = build_decoders(
        FULL_RANK, input_layer=input_layer, normalize_before=normalize_before, concat_after=concat_after
    )
    dense.eval()
    lowrank_dec.eval()
    assert len(factorized(lowrank_dec)) == BLOCKS * (8 + 2)
    torch.manual_seed(1)
    hs = torch.randn(2, 9, ODIM)
    hlens = torch.tensor([9, 7], dtype=torch.long)
    ys = torch.randint(0, VOCAB, (2, 5)) if input_layer == "embed" else torch.randn(2, 5, VOCAB)
    ylens = torch.tensor([5, 3], dtype=torch.long)
    with torch.no_grad():
        z_d, _ = dense(hs, hlens, ys, ylens)
        z_l, _ = lowrank_dec(hs, hlens, ys, ylens)
    torch.testing.assert_close(z_l, z_d, rtol=0, atol=1e-5)

    if input_layer == "embed":  # score/batch_score take token ids
        with torch.no_grad():
            logp_d, _ = dense.score(ys[0], None, hs[0])
            logp_l, state = lowrank_dec.score(ys[0], None, hs[0])
            blogp_d, _ = dense.batch_score(ys, [None, None], hs)
            blogp_l, _ = lowrank_dec.batch_score(ys, [None, None], hs)
        torch.testing.assert_close(logp_l, logp_d, rtol=0, atol=1e-5)
        torch.testing.assert_close(blogp_l, blogp_d, rtol=0, atol=1e-5)
        assert len(state) == BLOCKS


@pytest.mark.parametrize("normalize_before", [True, False])
def test_decoder_score_and_batch_score(normalize_before):
    _, dec = build_decoders(LOWRANK, normalize_before=normalize_before)
    dec.eval()
    torch.manual_seed(1)
    memory = torch.randn(9, ODIM)
    sos = VOCAB - 1
    hyps = torch.tensor([[sos, 1, 2], [sos, 3, 3], [sos, 2, 4]])
    with torch.no_grad():
        state = dec.init_state(memory)
        single = []
        for ys in hyps:
            logp, new_state = dec.score(ys, state, memory)
            assert logp.shape == (VOCAB,)
            assert len(new_state) == BLOCKS and new_state[0].shape == (1, len(ys), ODIM)
            single.append(logp)
        batch, states = dec.batch_score(hyps, [None] * len(hyps), memory.expand(len(hyps), -1, -1))
        # the last-step log-probabilities of a full teacher-forced forward
        logits, _ = dec(memory.expand(len(hyps), -1, -1), torch.full((len(hyps),), 9), hyps,
                        torch.full((len(hyps),), hyps.size(1)))
    assert batch.shape == (len(hyps), VOCAB) and len(states) == len(hyps)
    torch.testing.assert_close(batch, torch.stack(single), rtol=0, atol=1e-5)
    torch.testing.assert_close(batch, torch.log_softmax(logits[:, -1], dim=-1), rtol=0, atol=1e-5)
    torch.testing.assert_close(batch.exp().sum(-1), torch.ones(len(hyps)), rtol=0, atol=1e-5)

    # incremental scoring with the cache equals scoring the whole prefix from scratch
    with torch.no_grad():
        _, cache = dec.score(hyps[0, :2], None, memory)
        step, _ = dec.score(hyps[0], cache, memory)
    torch.testing.assert_close(step, single[0], rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------- beam search with CTC
TOKENS = ["<blank>", "a", "b", "c", "d", "<unk>", "<sos/eos>"]


def make_beam_searches(decoder, ctc, dtype, ctc_weight):
    eos = len(TOKENS) - 1
    searches = []
    for cls in (BeamSearch, BatchBeamSearch):
        search = cls(
            scorers={"decoder": decoder, "ctc": CTCPrefixScorer(ctc=ctc, eos=eos)},
            weights={"decoder": 1.0 - ctc_weight, "ctc": ctc_weight},
            beam_size=3,
            vocab_size=len(TOKENS),
            sos=eos,
            eos=eos,
            token_list=TOKENS,
            pre_beam_score_key="full",
        )
        search.to(dtype=dtype).eval()
        searches.append(search)
    return searches


@pytest.mark.parametrize("normalize_before", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
# maxlenratio as in ESPnet's test: 0 = end detection, > 0 = ratio of the input length, < 0 = fixed length
@pytest.mark.parametrize("maxlenratio", [0.0, 1.0, -2.0])
def test_beam_search_and_batch_beam_search_with_ctc(normalize_before, dtype, maxlenratio):
    assert len(TOKENS) == VOCAB
    torch.manual_seed(0)
    encoder = LowRankConformerEncoder(IDIM, lowrank=LOWRANK, **encoder_kwargs(normalize_before=normalize_before))
    decoder = LowRankTransformerDecoder(VOCAB, ODIM, lowrank=LOWRANK, attention_heads=HEADS,
                                        linear_units=UNITS, num_blocks=BLOCKS, normalize_before=normalize_before)
    ctc = CTC(odim=VOCAB, encoder_output_size=ODIM)
    assert factorized(encoder) and factorized(decoder)
    for m in (encoder, decoder, ctc):
        m.to(dtype).eval()

    x, _ = encoder_input("conv2d")
    with torch.no_grad():
        enc_out, enc_len, _ = encoder(x[:1].to(dtype), torch.tensor([32]))
    enc_out = enc_out[0, : int(enc_len[0])]
    assert enc_out.shape == (7, ODIM) and enc_out.dtype == dtype

    beam, batch_beam = make_beam_searches(decoder, ctc, dtype, ctc_weight=0.3)
    with torch.no_grad():
        # minlenratio -1: at least one token (an untrained model otherwise prefers <sos> <eos>)
        hyps = beam(x=enc_out, maxlenratio=maxlenratio, minlenratio=-1.0)
        batch_hyps = batch_beam(x=enc_out, maxlenratio=maxlenratio, minlenratio=-1.0)
    eos = VOCAB - 1
    for found in (hyps, batch_hyps):
        assert len(found) > 0
        for hyp in found:
            assert int(hyp.yseq[0]) == eos and int(hyp.yseq[-1]) == eos
            assert len(hyp.yseq) >= 3  # minlenratio -1: at least one token
            assert set(hyp.scores) == {"decoder", "ctc"}
            assert torch.isfinite(torch.as_tensor(hyp.score))
        if maxlenratio < 0:  # a fixed maximum of |maxlenratio| tokens
            assert all(sum(t != eos for t in h.yseq.tolist()) <= -maxlenratio for h in found)
    best, batch_best = hyps[0], batch_hyps[0]
    assert best.yseq.tolist() == batch_best.yseq.tolist()
    # BeamSearch's CTCPrefixScorer.score_partial computes in float32 numpy whatever the dtype
    assert abs(float(best.score) - float(batch_best.score)) < 1e-4


def test_positional_arguments_reach_espnets_constructor_as_in_espnet():
    from espnet_lrsms.asr.lowrank_conformer_encoder import LowRankConformerEncoder
    from espnet_lrsms.asr.lowrank_transformer_decoder import LowRankTransformerDecoder

    encoder = LowRankConformerEncoder(20, 16, lowrank={"mhsa": 0.5})
    decoder = LowRankTransformerDecoder(10, 16, 4, lowrank={"ffn": 0.5})
    assert encoder.output_size() == 16
    assert decoder.decoders[0].self_attn.h == 4
    assert decoder.decoders[0].feed_forward.w_1.rank == 8
