"""Every config of conf/asr/ builds through ESPnet's ASRTask.build_model with the paper's parameter count."""
import logging
from pathlib import Path

import pytest
import yaml

from espnet_lrsms.bin import count_params
from espnet_lrsms.lowrank import LowRankConfigError
from espnet_lrsms.asr.build import build_asr_model
from espnet_lrsms.recipe.paper_configs import read_paper_rows
from espnet_lrsms.train.build import factorized_layers, parameter_summary

CONF = Path(__file__).resolve().parents[2] / "conf" / "asr"
PAPER_ROWS = read_paper_rows(CONF)


def test_manifest_lists_all_fourteen_rows_the_fig4_pair_and_every_config():
    tables = [row["table"] for row in PAPER_ROWS.values()]
    assert len(PAPER_ROWS) == 17 and tables.count("Fig. 4") == 3
    assert all((CONF / name).is_file() for name in PAPER_ROWS)  # other (users') configs may sit next to them


@pytest.mark.parametrize("alpha", ["0.06", "0.25", "0.50"])
def test_fig4_pair_differs_only_in_the_init(alpha):
    svd = yaml.safe_load((CONF / f"train_asr_conformer_uniform_ffn_a{alpha}.yaml").read_text())
    kaiming = yaml.safe_load((CONF / f"train_asr_conformer_uniform_ffn_a{alpha}_kaiming.yaml").read_text())
    for part in ("encoder_conf", "decoder_conf"):
        assert svd[part]["lowrank"].pop("init") == "svd"
        assert kaiming[part]["lowrank"].pop("init") == "kaiming_traditional"
    assert svd == kaiming


def test_paper_configs_are_sized_per_gpu_and_count_their_epochs():
    """No GPU count or corpus size is written into a paper config."""
    for name in PAPER_ROWS:
        config = yaml.safe_load((CONF / name).read_text())
        assert config["batch_bins_per_gpu"] == 1_536_000 and "batch_bins" not in config, name
        assert "steps_per_epoch" not in config["scheduler_conf"], name
        assert config["scheduler_conf"] == {"warmup_epochs": 5, "cooldown_epochs": 15, "total_epochs": 75}, name


@pytest.mark.parametrize("name", sorted(PAPER_ROWS))
def test_parameter_count_within_1p5_percent_of_the_paper(name):
    model = build_asr_model(CONF / name, vocab_size=5000, device="meta")
    total = parameter_summary(model)["total"] / 1e6
    paper = PAPER_ROWS[name]["params_m"]
    assert abs(total / paper - 1) < 0.015, f"{name}: {total:.2f} M vs paper {paper} M"


def test_lrsms_parts_and_ranks():
    model = build_asr_model(CONF / "train_asr_conformer_lrsms.yaml", device="meta")
    parts = parameter_summary(model)
    assert parts == {
        "frontend": 3_848_576,
        "encoder": 80_318_208,
        "decoder": 27_302_792,
        "ctc": 3_845_000,
        "total": 115_314_576,
    }
    layers = factorized_layers(model)
    # 12 encoder blocks x (5 MHSA + 4 FFN) + 6 decoder blocks x (8 MHSA + 2 FFN)
    assert len(layers) == 12 * 9 + 6 * 10
    assert layers["encoder.encoders.0.self_attn.linear_pos"].rank == 77  # 0.1 x 768 = 76.8
    assert layers["encoder.encoders.11.feed_forward_macaron.w_1"].rank == 365  # (0.2 + 11/12 x 0.3) x 768
    assert layers["decoder.decoders.5.src_attn.linear_k"].rank == 141  # (0.1 + 5/6 x 0.1) x 768 = 140.8


def test_full_rank_baseline_is_espnets_own_conformer():
    model = build_asr_model(CONF / "train_asr_conformer_full_rank.yaml", device="meta")
    assert type(model.encoder).__name__ == "ConformerEncoder"
    assert type(model.decoder).__name__ == "TransformerDecoder"
    assert not factorized_layers(model)


def test_count_params_command_prints_paper_and_difference(capsys):
    assert count_params.main([str(CONF / "train_asr_conformer_lrsms.yaml")]) == 0
    out = capsys.readouterr().out
    assert "115.31" in out and "+0.27%" in out


def _write_config(tmp_path, lowrank):
    conf = yaml.safe_load((CONF / "train_asr_conformer_lrsms.yaml").read_text())
    conf["encoder_conf"]["lowrank"] = lowrank
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


def test_bad_schedule_fails_when_the_config_is_built(tmp_path):
    path = _write_config(tmp_path, {"mhsa": [0.1, 0.2, 0.3], "ffn": 0.5})
    with pytest.raises(LowRankConfigError, match=r"encoder_conf.lowrank.mhsa: .*\(12\), got 3 values"):
        build_asr_model(path, device="meta")


def test_break_even_warning_names_the_layers_and_can_keep_them_dense(tmp_path, caplog):
    path = _write_config(tmp_path, {"mhsa": 0.6, "ffn": 0.2})  # rank 461 >= 384 for 768 x 768
    with caplog.at_level(logging.WARNING):
        model = build_asr_model(path, device="meta")
    assert "encoder_conf.lowrank: 60 layer(s)" in caplog.text
    assert "encoders.0.self_attn.linear_q (rank 461 >= 384)" in caplog.text
    assert "factorized anyway" in caplog.text
    assert "encoder.encoders.0.self_attn.linear_q" in factorized_layers(model)

    path = _write_config(tmp_path, {"mhsa": 0.6, "ffn": 0.2, "keep_dense_above_break_even": True})
    model = build_asr_model(path, device="meta")
    names = factorized_layers(model)
    assert not any("encoder.encoders" in n and "self_attn" in n for n in names)
    assert any("encoder.encoders" in n and "feed_forward" in n for n in names)


def test_count_params_lists_layers_with_rank_weights_and_macs(capsys):
    count_params.main([str(CONF / "train_asr_conformer_lrsms.yaml"), "--layers"])
    out = capsys.readouterr().out
    assert "encoder.encoders.0.feed_forward.w_1" in out
    assert "3072x768 rank  154:   591,360 weights and MACs/vector (dense 2,359,296)" in out
