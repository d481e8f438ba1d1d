"""FactorizedLinear: spectral (SVD) init, Kaiming init, compression of a dense layer."""
import math

import pytest
import torch
from torch import nn

from espnet_lrsms.lowrank import FactorizedLinear, break_even_rank


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_full_rank_svd_init_reproduces_the_dense_layer():
    dense = nn.Linear(96, 64)
    layer = FactorizedLinear.from_linear(dense, rank=64, init="svd")
    x = torch.randn(10, 7, 96)
    torch.testing.assert_close(layer(x), dense(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(layer.dense_weight(), dense.weight, atol=1e-6, rtol=0)


def test_rank_r_svd_init_is_the_best_rank_r_approximation():
    weight = torch.randn(80, 50, dtype=torch.float64)
    layer = FactorizedLinear(50, 80, rank=12, bias=False, dtype=torch.float64).init_svd_(weight)
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    best = u[:, :12] @ torch.diag(s[:12]) @ vh[:12]
    torch.testing.assert_close(layer.dense_weight(), best, atol=1e-10, rtol=0)
    # Eckart-Young: the Frobenius error is the energy of the dropped singular values
    error = torch.linalg.norm(weight - layer.dense_weight())
    assert error.item() == pytest.approx(s[12:].pow(2).sum().sqrt().item(), rel=1e-9)
    # Eq. (1): both factors carry sqrt(Sigma_r)
    torch.testing.assert_close(layer.u.norm(dim=0), s[:12].sqrt(), atol=1e-10, rtol=0)
    torch.testing.assert_close(layer.vt.norm(dim=1), s[:12].sqrt(), atol=1e-10, rtol=0)


def test_kaiming_init_keeps_the_dense_output_variance():
    n, m, r = 512, 512, 64
    x = torch.randn(4096, n)
    dense_vars, factor_vars = [], []
    for seed in range(5):
        torch.manual_seed(seed)
        dense = nn.Linear(n, m, bias=False)
        layer = FactorizedLinear(n, m, rank=r, bias=False)  # default: Kaiming, nn.Linear's scale
        with torch.no_grad():
            dense_vars.append(dense(x).var().item())
            factor_vars.append(layer(x).var().item())
    ratio = sum(factor_vars) / sum(dense_vars)
    assert abs(ratio - 1) < 0.10, ratio
    assert sum(dense_vars) / 5 == pytest.approx(1 / 3, rel=0.05)  # nn.Linear: Var(W) = 1/(3n)


def test_kaiming_from_linear_takes_the_scale_of_the_replaced_layer():
    dense = nn.Linear(256, 384)
    nn.init.normal_(dense.weight, std=0.2)
    layer = FactorizedLinear.from_linear(dense, rank=32, init="kaiming")
    x = torch.randn(2048, 256)
    with torch.no_grad():
        ratio = (layer(x) - layer.bias).var() / (dense(x) - dense.bias).var()
    assert abs(ratio.item() - 1) < 0.10
    torch.testing.assert_close(layer.bias, dense.bias)


def test_counts_and_break_even():
    layer = FactorizedLinear(768, 3072, rank=154)
    assert layer.num_weights == 154 * (768 + 3072)
    assert layer.dense_num_weights == 768 * 3072
    assert layer.macs_per_token == layer.num_weights
    assert sum(p.numel() for p in layer.parameters()) == 154 * (768 + 3072) + 3072
    assert break_even_rank(768, 3072) == pytest.approx(614.4)
    assert break_even_rank(768, 768) == 384


def test_rank_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="rank must be in"):
        FactorizedLinear(16, 8, rank=9)
    with pytest.raises(ValueError, match="rank must be in"):
        FactorizedLinear(16, 8, rank=0)


def test_gradients_reach_both_factors():
    layer = FactorizedLinear(32, 16, rank=4)
    layer(torch.randn(5, 32)).pow(2).sum().backward()
    assert layer.u.grad.abs().sum() > 0 and layer.vt.grad.abs().sum() > 0
    assert math.isfinite(layer.bias.grad.sum().item())


def test_from_linear_draws_no_random_numbers():
    dense = nn.Linear(64, 32)
    torch.manual_seed(5)
    FactorizedLinear.from_linear(dense, rank=8, init="svd")
    after_factorizing = torch.rand(3)
    torch.manual_seed(5)
    torch.testing.assert_close(after_factorizing, torch.rand(3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu_in_bfloat16_autocast():
    layer = FactorizedLinear.from_linear(nn.Linear(256, 512), rank=64)
    x = torch.randn(8, 100, 256)
    expected = layer(x)
    gpu = layer.cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        got = gpu(x.cuda()).float().cpu()
    torch.testing.assert_close(got, expected, atol=0.05, rtol=0.05)
