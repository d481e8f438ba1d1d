"""bench/trend_study.py's settings (docs/study.md): one YAML each, differing from LR-SMS only where named."""
import pytest
import yaml

from espnet_lrsms.asr.build import build_asr_model
from espnet_lrsms.train.build import parameter_summary

from conftest import REPO, module_from_file


@pytest.fixture(scope="module")
def study():
    return module_from_file(REPO / "bench" / "trend_study.py")


def test_each_setting_changes_only_what_it_names(study, tmp_path):
    base = yaml.safe_load(study.BASE_CONFIG.read_text())
    written = study.study_configs(base, epochs=15, vocab_size=50, conf_dir=tmp_path)
    assert list(written) == list(study.SETTINGS)
    configs = {s: yaml.safe_load(path.read_text()) for s, (path, _) in written.items()}
    params = {s: parameter_summary(build_asr_model(path, vocab_size=50, device="meta"))["total"]
              for s, (path, _) in written.items()}
    lrsms = configs["lrsms_svd"]
    # the schedule shrinks with the epochs: 40 -> 15 (warm-up 2.5 -> 0.94, cool-down 12.5 -> 4.69)
    assert lrsms["max_epoch"] == lrsms["scheduler_conf"]["total_epochs"] == 15
    assert lrsms["scheduler_conf"]["warmup_epochs"] == 0.94 and lrsms["scheduler_conf"]["cooldown_epochs"] == 4.69
    assert lrsms["encoder_conf"]["lowrank"] == base["encoder_conf"]["lowrank"]
    for setting, config in configs.items():  # nothing but lowrank: differs from LR-SMS
        assert {k: v for k, v in config.items() if k not in ("encoder_conf", "decoder_conf")} == \
            {k: v for k, v in lrsms.items() if k not in ("encoder_conf", "decoder_conf")}, setting
        for part in ("encoder_conf", "decoder_conf"):
            assert {k: v for k, v in config[part].items() if k != "lowrank"} == \
                {k: v for k, v in lrsms[part].items() if k != "lowrank"}, setting
    assert configs["full_rank"]["encoder_conf"]["lowrank"] is None and configs["full_rank"]["decoder_conf"]["lowrank"] is None
    assert configs["lrsms_kaiming"]["decoder_conf"]["lowrank"] == {**lrsms["decoder_conf"]["lowrank"], "init": "kaiming"}
    assert configs["frobenius_decay"]["encoder_conf"]["lowrank"]["frobenius_decay"] == base["optim_conf"]["weight_decay"]
    assert written["warmup_full_rank"][1] == ["--warmup_full_rank_epochs", "3"]  # a fifth of 15
    assert configs["warmup_full_rank"] == lrsms
    assert configs["uniform_mhsa"]["encoder_conf"]["lowrank"] == {"mhsa": 0.25, "ffn": None, "init": "svd"}
    # uniform on both at LR-SMS's parameter count: alpha = 0.36 is the closest of the 0.01 grid
    assert configs["uniform_both"]["decoder_conf"]["lowrank"] == {"mhsa": 0.36, "ffn": 0.36, "init": "svd"}
    assert abs(params["uniform_both"] / params["lrsms_svd"] - 1) < 0.01
    assert params["full_rank"] > params["uniform_mhsa"] > params["uniform_ffn"] > params["lrsms_svd"]
    assert params["lrsms_svd"] == params["lrsms_kaiming"] == params["frobenius_decay"] == 417_348


def test_docs_study_table_is_the_one_the_script_writes_from_the_committed_csv(study, tmp_path):
    import csv

    with open(REPO / "docs" / "study.csv", encoding="utf-8") as f:
        rows = [{**r, "seed": int(r["seed"]), "params": int(r["params"]), "train_seconds": float(r["train_seconds"]),
                 "dev_wer": float(r["dev_wer"]), "test_wer": float(r["test_wer"])} for r in csv.DictReader(f)]
    assert len(rows) == 2 * len(study.SETTINGS)
    study.write_outputs(rows, tmp_path, "bench/trend_study.py --workdir /tmp/study --epochs 15")
    table = [line for line in (tmp_path / "study.md").read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(study.SETTINGS) and (tmp_path / "valid_acc.png").stat().st_size > 0
    doc = (REPO / "docs" / "study.md").read_text(encoding="utf-8").splitlines()
    assert [line for line in table if line not in doc] == []
    assert "| lrsms_svd | 417,154 | 279.6 ± 10.8 | 2.8 ± 0.1 | 7.4 ± 0.7 | 0.881 | 0.873, 0.889 |" in table
