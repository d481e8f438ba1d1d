"""Fitting a rank schedule to planted known ranks, with and without a parameter budget."""
import csv

import pytest
import torch
import yaml

from espnet_lrsms.analysis.fit_rank_schedule import count_parameters, fit_linear, fit_rank_schedule
from espnet_lrsms.bin import analysis_fit_rank_schedule as cli
from espnet_lrsms.asr.build import build_asr_model

from conftest import REPO

torch.set_num_threads(1)

TINY = REPO / "conf" / "demo" / "train_asr_lrsms_tiny.yaml"
ALPHA_I, ALPHA_F = 0.25, 0.75
ENC_BLOCKS, DEC_BLOCKS = 4, 3


def planted_alpha(b, num_blocks):
    return ALPHA_I + b * (ALPHA_F - ALPHA_I) / num_blocks


def flat_rank(m, n, r, g):
    """An m x n matrix with r equal singular values (0.5) and the rest exactly zero."""
    q1, _ = torch.linalg.qr(torch.randn(m, r, generator=g, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(n, r, generator=g, dtype=torch.float64))
    return 0.5 * q1 @ q2.T


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The tiny config's dense equivalent (conformer 4 blocks, transformer 3 blocks) with planted ranks."""
    root = tmp_path_factory.mktemp("planted")
    conf = yaml.safe_load(TINY.read_text())
    conf["encoder"], conf["decoder"] = "conformer", "transformer"
    del conf["encoder_conf"]["lowrank"], conf["decoder_conf"]["lowrank"]
    conf["encoder_conf"]["num_blocks"], conf["decoder_conf"]["num_blocks"] = ENC_BLOCKS, DEC_BLOCKS
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(conf))
    torch.manual_seed(0)
    state = build_asr_model(config, vocab_size=12).state_dict()
    g = torch.Generator().manual_seed(1)
    planted_ranks = {}
    for key, value in state.items():
        parts = key.split(".")
        if value.dim() != 2 or parts[-1] != "weight" or parts[1] not in ("encoders", "decoders"):
            continue
        if not (parts[3] in ("self_attn", "src_attn") or parts[3].startswith("feed_forward")):
            continue
        b, num_blocks = int(parts[2]), ENC_BLOCKS if parts[0] == "encoder" else DEC_BLOCKS
        m, n = value.shape
        r = round(planted_alpha(b, num_blocks) * min(m, n))
        state[key] = flat_rank(m, n, r, g).to(value.dtype)
        planted_ranks[key] = r / min(m, n)
    checkpoint = root / "model.pth"
    torch.save(state, checkpoint)
    assert len(planted_ranks) == ENC_BLOCKS * 9 + DEC_BLOCKS * 10  # q,k,v,out,pos + 2x(w_1,w_2); 2x4 attn + 2 ffn
    return config, checkpoint


def test_fit_linear_convention():
    # alpha_b = a_i + b (a_f - a_i) / B, b = 0..B-1: the last block is below a_f
    assert fit_linear([0.1, 0.15, 0.2, 0.25]) == pytest.approx((0.1, 0.3))
    assert fit_linear([0.4]) == (0.4, 0.4)


def test_recovers_planted_linear_ranks(planted):
    config, checkpoint = planted
    result = fit_rank_schedule(config, checkpoint, threshold=1.0)
    assert result.multiplier == 1.0
    for (submodel, mtype), fit in result.fits.items():
        assert fit.num_blocks == (ENC_BLOCKS if submodel == "encoder" else DEC_BLOCKS)
        assert fit.alpha_i == pytest.approx(ALPHA_I, abs=0.01), (submodel, mtype)
        assert fit.alpha_f == pytest.approx(ALPHA_F, abs=0.01), (submodel, mtype)
    assert sorted(result.fits) == [("decoder", "ffn"), ("decoder", "mhsa"), ("encoder", "ffn"), ("encoder", "mhsa")]
    # the encoder's planted ranks are exact: 16, 24, 32, 40 of 64
    assert result.fits[("encoder", "mhsa")].fractions == [0.25, 0.375, 0.5, 0.625]


def test_cli_prints_paste_ready_yaml_with_its_parameter_count(planted, capsys, tmp_path):
    config, checkpoint = planted
    # the default 95 % energy of a flat spectrum needs ceil(0.95 r) values: within 0.05 of the planted alphas
    assert cli.main(["--config", str(config), "--checkpoint", str(checkpoint), "--output_config", str(tmp_path / "fitted.yaml")]) == 0
    printed = capsys.readouterr().out
    blocks = yaml.safe_load(printed)
    assert sorted(blocks) == ["decoder_conf", "encoder_conf"]
    for part in ("encoder_conf", "decoder_conf"):
        lowrank = blocks[part]["lowrank"]
        assert lowrank["init"] == "svd"
        for mtype in ("mhsa", "ffn"):
            alpha_i, alpha_f = lowrank[mtype]
            assert alpha_i == pytest.approx(ALPHA_I, abs=0.05) and alpha_f == pytest.approx(ALPHA_F, abs=0.05)
    # the printed count is that of the printed schedule
    params = int(printed.split("# parameters: ")[1].split("(")[1].split(")")[0].replace(",", ""))
    fitted = yaml.safe_load((tmp_path / "fitted.yaml").read_text())
    assert fitted["encoder"] == "lowrank_conformer" and fitted["decoder"] == "lowrank_transformer"
    assert fitted["encoder_conf"]["lowrank"] == blocks["encoder_conf"]["lowrank"]
    counted, _ = count_parameters(yaml.safe_load(config.read_text()), 12,
                                  {"encoder": blocks["encoder_conf"]["lowrank"], "decoder": blocks["decoder_conf"]["lowrank"]})
    assert params == counted


def test_budget_scales_all_alphas_by_one_multiplier(planted):
    config, checkpoint = planted
    unscaled = fit_rank_schedule(config, checkpoint, threshold=1.0)
    budget = 0.9 * unscaled.num_params
    result = fit_rank_schedule(config, checkpoint, budget_m=budget / 1e6, threshold=1.0)
    assert result.num_params <= budget < unscaled.num_params
    assert 0.5 < result.multiplier < 1
    assert result.num_params > budget - 1000  # one rank step of a 64 x 256 FFN matrix is 320 weights
    enc = result.schedules["encoder"]["mhsa"]
    assert enc == [round(result.multiplier * a, 4) for a in (result.fits[("encoder", "mhsa")].alpha_i,
                                                             result.fits[("encoder", "mhsa")].alpha_f)]
    # a budget below every layer at rank 1 is refused
    with pytest.raises(ValueError, match="below the smallest model"):
        fit_rank_schedule(config, checkpoint, budget_m=0.01, threshold=1.0)


def test_an_experiment_config_yaml_works_too(planted, tmp_path):
    """ESPnet's exp/*/config.yaml records non-option keys (required, version) that its parser refuses."""
    config, checkpoint = planted
    exp_config = yaml.safe_load(config.read_text())
    exp_config.update(required=["output_dir", "token_list"], version="202511", distributed=False,
                      token_list=[f"t{i}" for i in range(12)])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(exp_config))
    assert cli.main(["--config", str(path), "--checkpoint", str(checkpoint), "--threshold", "1",
                     "--output_config", str(tmp_path / "fitted.yaml")]) == 0
    fitted = yaml.safe_load((tmp_path / "fitted.yaml").read_text())
    assert "required" not in fitted and "version" not in fitted
    assert fitted["encoder_conf"]["lowrank"]["mhsa"] == pytest.approx([ALPHA_I, ALPHA_F], abs=0.01)


def test_per_block_lists(planted, capsys):
    config, checkpoint = planted
    assert cli.main(["--config", str(config), "--checkpoint", str(checkpoint), "--per_block", "--threshold", "1"]) == 0
    blocks = yaml.safe_load(capsys.readouterr().out)
    assert blocks["encoder_conf"]["lowrank"]["mhsa"] == {"per_block": [0.25, 0.375, 0.5, 0.625]}
    assert blocks["decoder_conf"]["lowrank"]["ffn"] == {"per_block": [0.25, 0.4219, 0.5781]}  # 16, 27, 37 of 64


def test_cli_writes_the_fit_as_csv_and_plot(planted, capsys, tmp_path):
    config, checkpoint = planted
    out = tmp_path / "fit"
    assert cli.main(["--config", str(config), "--checkpoint", str(checkpoint), "--threshold", "1",
                     "--output_dir", str(out)]) == 0
    blocks = yaml.safe_load(capsys.readouterr().out)
    with open(out / "schedule_fit.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["submodel"], r["module_type"]) for r in rows} == {
        (s, m) for s in ("encoder", "decoder") for m in ("mhsa", "ffn")}
    for r in rows:
        b, n = int(r["block"]), int(r["num_blocks"])
        alpha_i, alpha_f = blocks[f"{r['submodel']}_conf"]["lowrank"][r["module_type"]]
        # the CSV's schedule column is the printed [α_i, α_f] evaluated at block b (b counted from 0)
        assert float(r["scheduled_alpha"]) == pytest.approx(alpha_i + b * (alpha_f - alpha_i) / n, abs=1e-6)
        # at τ = 1 the measured fraction is the planted rank fraction: on the planted line
        assert float(r["measured_fraction"]) == pytest.approx(ALPHA_I + b * (ALPHA_F - ALPHA_I) / n, abs=0.01)
    assert (out / "schedule_fit.png").stat().st_size > 10_000


def test_stable_rank_measure():
    from espnet_lrsms.analysis.rank_emergence import count_for_threshold

    s = torch.tensor([3.0, 2.0, 1.0, 0.0], dtype=torch.float64)
    assert count_for_threshold(s, measure="stable") == 2  # (9 + 4 + 1) / 9 = 1.56, rounded up
    assert count_for_threshold(torch.full((5,), 0.5), measure="stable") == 5  # equal values: the full rank
    assert count_for_threshold(torch.zeros(3), measure="stable") == 0


def test_stable_rank_fit_recovers_planted_ranks_and_fits_a_budget(planted, capsys):
    config, checkpoint = planted
    result = fit_rank_schedule(config, checkpoint, measure="stable")
    assert result.fits[("encoder", "mhsa")].fractions == [0.25, 0.375, 0.5, 0.625]  # r equal values: stable rank r
    for fit in result.fits.values():
        assert (fit.alpha_i, fit.alpha_f) == (pytest.approx(ALPHA_I, abs=0.01), pytest.approx(ALPHA_F, abs=0.01))
    full, _ = count_parameters(yaml.safe_load(config.read_text()), 12, result.schedules)
    assert cli.main(["--config", str(config), "--checkpoint", str(checkpoint), "--measure", "stable",
                     "--budget_m", str(0.8 * full / 1e6)]) == 0
    printed = capsys.readouterr().out
    assert "rank fraction of the stable rank (sum of s^2 / s_1^2, rounded up)" in printed
