"""Initialising factorized layers in a real model: the deferred spectral init (no SVD when a checkpoint
is loaded), ESPnet's ``--init`` applied to the factorized layer as to the dense one, and the paper's
traditional Kaiming baseline (Fig. 4)."""
import pytest
import torch
from espnet2.tasks.asr import ASRTask
from espnet2.torch_utils.initialize import initialize
from torch import nn

from espnet_lrsms.lowrank import FactorizedLinear, materialize_spectral_init_, reinit_factorized_
from espnet_lrsms.lowrank.factorize import state_dict_keys
from espnet_lrsms.lowrank.factorized_linear import truncated_svd_factors
from espnet_lrsms.asr.build import build_asr_model
from espnet_lrsms.train.build import dummy_token_list

from conftest import REPO

TINY = REPO / "conf" / "demo" / "train_asr_lrsms_tiny.yaml"
ESPNET_INITS = ["chainer", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "normal"]


def espnet_build(config=TINY, **overrides):
    """ESPnet's own ``ASRTask.build_model``, as ``Speech2Text`` and ``asr_inference`` call it."""
    args = ASRTask.get_parser().parse_args(["--config", str(config), "--token_list", "x", "--output_dir", "x"])
    for key, value in overrides.items():
        setattr(args, key, value)
    args.token_list = dummy_token_list(12)
    return ASRTask.build_model(args)


def factorized(model):
    return {name: m for name, m in model.named_modules() if isinstance(m, FactorizedLinear)}


def best_rank_r(weight, rank):
    u, s, vh = torch.linalg.svd(weight.double(), full_matrices=False)
    return (u[:, :rank] * s[:rank]) @ vh[:rank]


def test_truncated_svd_factors_match_lapack_svd_for_every_model_shape():
    torch.manual_seed(0)
    for m, n, r in [(192, 192, 19), (768, 192, 38), (192, 768, 96), (50, 80, 50), (80, 50, 12)]:
        weight = nn.Linear(n, m).weight.detach()
        left, right = truncated_svd_factors(weight, r)
        assert left.shape == (m, r) and right.shape == (r, n) and left.dtype == torch.float32
        torch.testing.assert_close((left.double() @ right.double()), best_rank_r(weight, r), atol=2e-6, rtol=0)
        s = torch.linalg.svdvals(weight.double())[:r]
        torch.testing.assert_close(left.double().norm(dim=0), s.sqrt(), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(right.double().norm(dim=1), s.sqrt(), atol=1e-6, rtol=1e-5)


def test_rank_deficient_weight_gives_finite_factors():
    weight = torch.zeros(6, 4, dtype=torch.float64)
    weight[0, 0] = 2.0
    left, right = truncated_svd_factors(weight, 3)
    assert torch.isfinite(left).all() and torch.isfinite(right).all()
    torch.testing.assert_close(left @ right, weight)


def test_espnet_build_defers_the_svd_and_loading_a_checkpoint_never_computes_it(monkeypatch):
    from espnet_lrsms.lowrank import factorized_linear

    trained = build_asr_model(TINY, vocab_size=12)
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in trained.state_dict().items()}  # "trained"
    assert set(state) == set(state_dict_keys(trained))

    def no_svd(*args):
        raise AssertionError("an SVD was computed while loading a checkpoint")

    monkeypatch.setattr(factorized_linear, "truncated_svd_factors", no_svd)
    model = espnet_build()
    layers = factorized(model)
    assert len(layers) == 28 and all(layer.spectral_init_pending for layer in layers.values())
    assert all(torch.isnan(layer.u).all() for layer in layers.values())  # unread factors fail loudly
    model.load_state_dict(state, strict=False)  # what build_model_from_file does
    assert not any(layer.spectral_init_pending for layer in layers.values())
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, state[name], atol=0, rtol=0)


def test_deferred_init_is_eq1_of_the_dense_init_the_full_rank_model_would_draw():
    torch.manual_seed(3)
    eager = build_asr_model(TINY, vocab_size=12)  # computes the init before returning
    torch.manual_seed(3)
    conf = _conf()
    dense = build_asr_model(
        TINY,
        vocab_size=12,
        overrides={part: {**conf[part], "lowrank": None} for part in ("encoder_conf", "decoder_conf")},
    )
    dense_weights = dict(dense.named_parameters())
    layers = factorized(eager)
    for name, layer in layers.items():
        torch.testing.assert_close(
            layer.dense_weight().double(), best_rank_r(dense_weights[f"{name}.weight"], layer.rank), atol=1e-6, rtol=0
        )
    # a forward pass (or state_dict) computes a pending init: the same weights
    torch.manual_seed(3)
    lazy = espnet_build()
    speech = torch.randn(1, 8000)
    lazy.eval()
    lazy.encode(speech, torch.tensor([8000]))
    for name, layer in factorized(lazy).items():
        if name.startswith("encoder."):
            assert not layer.spectral_init_pending
            torch.testing.assert_close(layer.u, layers[name].u)
    for key, value in lazy.state_dict().items():  # state_dict computes the decoder's too
        torch.testing.assert_close(value, eager.state_dict()[key])


def _conf():
    import yaml

    return yaml.safe_load(TINY.read_text())


@pytest.mark.parametrize("init", ESPNET_INITS)
def test_espnet_init_treats_the_factorized_layer_as_the_dense_one(init):
    """Bias as ESPnet leaves a dense layer's (zero), factors = truncated SVD of that dense init."""
    model = espnet_build(init=init)
    drawn = {}

    def init_dense(holder):
        initialize(holder, init)
        ((name, dense),) = holder.named_children()
        drawn[len(drawn)] = dense.weight.detach().clone()

    torch.manual_seed(0)
    count = reinit_factorized_(model, init_dense)
    materialize_spectral_init_(model)
    layers = list(factorized(model).values())
    assert count == len(layers) == 28
    for i, layer in enumerate(layers):
        assert layer.bias is None or layer.bias.abs().max().item() == 0.0  # linear_pos has no bias
        torch.testing.assert_close(layer.dense_weight().double(), best_rank_r(drawn[i], layer.rank), atol=1e-6, rtol=0)
    # and the dense layers ESPnet initialised: their biases are zero too
    dense_biases = [m.bias for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None]
    assert dense_biases and all(b.abs().max().item() == 0.0 for b in dense_biases)


@pytest.mark.parametrize("init", ["chainer", "xavier_uniform"])
def test_training_build_with_espnet_init_zeroes_factorized_biases(init):
    model = build_asr_model(TINY, vocab_size=12, overrides={"init": init})
    biases = [layer.bias for layer in factorized(model).values() if layer.bias is not None]
    assert len(biases) == 26 and max(b.abs().max().item() for b in biases) == 0.0


def test_traditional_kaiming_has_a_third_of_the_dense_output_variance():
    """Fig. 4's baseline: each factor as its own nn.Linear; Var(out) = 1/9 against 1/3 (768 -> 3072, r = 154)."""
    n, m, r = 768, 3072, 154
    x = torch.randn(2048, n)
    dense_var, factor_var = 0.0, 0.0
    for seed in range(3):
        torch.manual_seed(seed)
        dense = nn.Linear(n, m, bias=False)
        layer = FactorizedLinear.from_linear(nn.Linear(n, m), rank=r, init="kaiming_traditional")
        assert layer.init_scheme == "kaiming_traditional"
        bound = 1 / r**0.5
        assert layer.bias.abs().max().item() <= bound and layer.bias.abs().max().item() > 0.9 * bound
        with torch.no_grad():
            dense_var += dense(x).var().item() / 3
            factor_var += (layer(x) - layer.bias).var().item() / 3
    assert dense_var == pytest.approx(1 / 3, rel=0.05)
    assert factor_var == pytest.approx(1 / 9, rel=0.05)


def test_traditional_kaiming_config_builds_and_espnet_init_leaves_it_alone():
    conf = _conf()
    for part in ("encoder_conf", "decoder_conf"):
        conf[part]["lowrank"]["init"] = "kaiming_traditional"
    model = build_asr_model(TINY, vocab_size=12, overrides={part: conf[part] for part in ("encoder_conf", "decoder_conf")})
    layers = factorized(model)
    assert len(layers) == 28 and all(m.init_scheme == "kaiming_traditional" for m in layers.values())
    assert reinit_factorized_(model, lambda holder: initialize(holder, "xavier_uniform")) == 0


@pytest.mark.parametrize("init", ["svd", "kaiming", "kaiming_traditional"])
def test_every_init_builds_on_the_meta_device_with_the_real_build_s_parameter_count(init):
    # count_params and the trend study build on "meta": no weight there to take σ_W or an SVD from
    conf = _conf()
    for part in ("encoder_conf", "decoder_conf"):
        conf[part]["lowrank"]["init"] = init
    overrides = {part: conf[part] for part in ("encoder_conf", "decoder_conf")}
    meta = build_asr_model(TINY, vocab_size=12, device="meta", overrides=overrides)
    real = build_asr_model(TINY, vocab_size=12, overrides=overrides)
    assert meta.encoder.encoders[0].feed_forward.w_1.u.is_meta
    assert sum(p.numel() for p in meta.parameters()) == sum(p.numel() for p in real.parameters()) == 409_976
