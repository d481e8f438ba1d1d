"""Rank emergence (LR-SMS Fig. 1/3): rank fractions of known-rank matrices, classification, CLI, plots."""
import csv

import pytest
import torch

from espnet_lrsms.analysis.rank_emergence import analyse_state_dict, count_for_threshold, rank_fraction
from espnet_lrsms.analysis.weights import classify, epoch_of
from espnet_lrsms.bin import analysis_rank_emergence as cli

torch.set_num_threads(1)


def exact_rank(m, n, r, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(m, r, generator=g, dtype=torch.float64) @ torch.randn(r, n, generator=g, dtype=torch.float64)).to(dtype)


def with_singular_values(m, n, values, seed=0):
    g = torch.Generator().manual_seed(seed)
    q1, _ = torch.linalg.qr(torch.randn(m, m, generator=g, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    s = torch.zeros(m, n, dtype=torch.float64)
    s[range(len(values)), range(len(values))] = torch.tensor(values, dtype=torch.float64)
    return q1 @ s @ q2.T


def test_exact_rank_matrix_at_threshold_one():
    w = exact_rank(64, 48, 12)  # stored in float32: rounding noise must not count as rank
    assert rank_fraction(w, threshold=1.0) == 12 / 48
    assert rank_fraction(w, threshold=1.0, measure="nuclear") == 12 / 48
    assert rank_fraction(w.T.contiguous(), threshold=1.0) == 12 / 48
    assert rank_fraction(exact_rank(64, 48, 48), threshold=1.0) == 1.0


def test_known_singular_values_give_the_95_percent_fraction():
    # energies 9, 4, 1, 0.25, 0.0625 (total 14.3125): 95 % = 13.597 needs 3 values -> 3/5
    w = with_singular_values(6, 5, [3, 2, 1, 0.5, 0.25])
    assert rank_fraction(w) == pytest.approx(3 / 5)
    # nuclear: 3, 5, 6, 6.5, 6.75; 95 % = 6.4125 needs 4 values -> 4/5
    assert rank_fraction(w, measure="nuclear") == pytest.approx(4 / 5)
    # 50 % of the energy (7.16) is reached by the first value alone (9)
    assert rank_fraction(w, threshold=0.5) == pytest.approx(1 / 5)
    # 19 equal values of 20: exactly 95 % of the energy, despite rounding
    assert count_for_threshold(torch.ones(20), 0.95) == 19
    assert rank_fraction(torch.zeros(4, 3)) == 0.0
    with pytest.raises(ValueError, match="threshold"):
        rank_fraction(w, threshold=1.5)
    with pytest.raises(ValueError, match="measure"):
        rank_fraction(w, measure="spectral")


def test_classification_of_espnet_keys():
    w = classify("encoder.encoders.3.self_attn.linear_q")
    assert (w.submodel, w.block, w.module, w.module_type) == ("encoder", 3, "self_attn.linear_q", "mhsa")
    assert classify("decoder.decoders.0.src_attn.linear_k").module_type == "mhsa"
    assert classify("encoder.encoders.1.feed_forward_macaron.w_2").module_type == "ffn"
    assert classify("encoder.encoders.1.conv_module.depthwise_conv").module_type == "conv"
    assert (classify("frontend.trunk.0.conv1").submodel, classify("frontend.trunk.0.conv1").block) == ("frontend", None)
    assert (classify("ctc.ctc_lo").submodel, classify("ctc.ctc_lo").module_type) == ("other", "other")


def toy_state(scale_rank=1.0):
    """A checkpoint-like state dict: dense, factorized, conv and non-block matrices."""
    state = {}
    for b in range(4):
        r = max(1, round(scale_rank * (8 + 8 * b)))
        state[f"encoder.encoders.{b}.self_attn.linear_q.weight"] = exact_rank(64, 64, min(r, 64), seed=b)
        state[f"encoder.encoders.{b}.self_attn.linear_q.bias"] = torch.zeros(64)
        state[f"encoder.encoders.{b}.feed_forward.w_1.weight"] = exact_rank(128, 64, min(2 * r, 64), seed=10 + b)
        state[f"encoder.encoders.{b}.conv_module.depthwise_conv.weight"] = torch.randn(64, 1, 15)
        state[f"encoder.encoders.{b}.conv_module.norm.weight"] = torch.ones(64)
        state[f"encoder.encoders.{b}.self_attn.pos_bias_u"] = torch.randn(4, 16)  # not a weight matrix
    state["decoder.decoders.0.src_attn.linear_k.u"] = exact_rank(64, 8, 8, seed=20)
    state["decoder.decoders.0.src_attn.linear_k.vt"] = exact_rank(8, 32, 8, seed=21)
    state["frontend.stem.0.weight"] = torch.randn(16, 1, 80)
    state["ctc.ctc_lo.weight"] = torch.randn(12, 64)
    return state


def test_state_dict_rows_dense_factorized_conv():
    rows = {r["key"]: r for r in analyse_state_dict(toy_state(), threshold=1.0)}
    assert len(rows) == 4 * 3 + 3
    q2 = rows["encoder.encoders.2.self_attn.linear_q.weight"]
    assert (q2["submodel"], q2["block"], q2["num_blocks"], q2["module_type"]) == ("encoder", 2, 4, "mhsa")
    assert (q2["shape"], q2["rank"], q2["rank_fraction"]) == ("64x64", 24, 24 / 64)
    f = rows["decoder.decoders.0.src_attn.linear_k.u@vt"]  # U @ V^T: 64 x 32 of rank 8
    assert (f["shape"], f["rank_fraction"], f["factor_rank"], f["num_blocks"]) == ("64x32", 8 / 32, 8, 1)
    dw = rows["encoder.encoders.0.conv_module.depthwise_conv.weight"]  # (C, 1, K) read as C x K
    assert (dw["shape"], dw["module_type"], dw["rank_fraction"]) == ("64x15", "conv", 1.0)
    assert rows["frontend.stem.0.weight"]["shape"] == "16x80"
    assert rows["ctc.ctc_lo.weight"]["block"] == ""


def test_cli_on_an_experiment_directory(tmp_path, capsys):
    exp = tmp_path / "exp"
    exp.mkdir()
    for epoch, scale in enumerate([1.0, 0.75, 0.5]):  # ranks shrink as "training" goes on
        torch.save(toy_state(scale), exp / f"{epoch}epoch.pth")
    (exp / "valid.acc.best.pth").symlink_to("2epoch.pth")
    assert epoch_of(exp / "valid.acc.best.pth") == 2

    assert cli.main([str(exp), "--threshold", "1.0"]) == 0
    out = exp / "analysis"
    with open(out / "rank_emergence.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:9] == ["checkpoint", "epoch", "key", "submodel", "block", "num_blocks", "module_type",
                                 "shape", "rank_fraction"]
    assert len(rows) == 3 * 15 and sorted({r["epoch"] for r in rows}) == ["0", "1", "2"]
    q3 = {r["epoch"]: float(r["rank_fraction"]) for r in rows if r["key"] == "encoder.encoders.3.self_attn.linear_q.weight"}
    assert q3 == {"0": 32 / 64, "1": 24 / 64, "2": 16 / 64}
    for png in ("rank_over_epochs.png", "rank_over_depth.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    printed = capsys.readouterr().out
    assert "3 checkpoint(s), 45 matrices" in printed

    # one checkpoint (through the best-model symlink): no over-epochs plot, the energy measure by default
    single = tmp_path / "single"
    assert cli.main([str(exp / "valid.acc.best.pth"), "--output_dir", str(single)]) == 0
    with open(single / "rank_emergence.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["epoch"] for r in rows} == {"2"} and {r["measure"] for r in rows} == {"energy"}
    assert (single / "rank_over_depth.png").is_file() and not (single / "rank_over_epochs.png").exists()

    with pytest.raises(SystemExit, match="no such checkpoint"):
        cli.main([str(tmp_path / "missing.pth")])
