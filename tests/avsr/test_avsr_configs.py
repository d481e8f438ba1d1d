"""conf/avsr/ reproduces the parameter counts of the paper's Table III (built on the meta device)."""
from pathlib import Path

import pytest

from espnet_lrsms.bin import count_params
from espnet_lrsms.avsr.build import build_avsr_model
from espnet_lrsms.recipe.paper_configs import read_paper_rows
from espnet_lrsms.train.build import parameter_summary

CONF = Path(__file__).resolve().parents[2] / "conf" / "avsr"
PAPER_ROWS = read_paper_rows(CONF)

# measured here, 5000 tokens
EXPECTED_TOTALS = {
    "train_avsr_conformer_full_rank.yaml": 268_430_416,  # paper 268.5 M: -0.03 %
    "train_avsr_conformer_linear_mhsa0.1-0.3_ffn0.3-0.5.yaml": 156_122_704,  # 156 M: +0.08 %
    "train_avsr_conformer_lrsms.yaml": 140_807_248,  # 140 M: +0.58 %
    "train_avsr_conformer_linear_mhsa0.1-0.2_ffn0.2-0.4.yaml": 132_835_408,  # 132 M: +0.63 %
}


@pytest.fixture(scope="module")
def built():
    return {name: parameter_summary(build_avsr_model(CONF / name, device="meta")) for name in sorted(PAPER_ROWS)}


def test_manifest_lists_the_four_rows_of_table_iii():
    assert all((CONF / name).is_file() for name in PAPER_ROWS)  # other (users') configs may sit next to them
    assert sorted(row["params_m"] for row in PAPER_ROWS.values()) == [132, 140, 156, 268.5]


def test_parameter_counts_within_1_percent_of_the_paper(built):
    for name, parts in built.items():
        paper = PAPER_ROWS[name]["params_m"]
        assert abs(parts["total"] / 1e6 / paper - 1) < 0.01, f"{name}: {parts['total'] / 1e6:.2f} M vs {paper} M"
        assert parts["total"] == EXPECTED_TOTALS[name], name


def test_full_rank_parts(built):
    parts = built["train_avsr_conformer_full_rank.yaml"]
    assert parts["frontend"] == 3_848_576  # the ASR model's ResNet-1D
    assert parts["video_frontend"] == 11_182_784  # 3-D stem 15,808 + ResNet-18 2-D trunk 11,166,976
    assert parts["fusion"] == 1024 * 8192 + 8192 + 2 * 8192 + 8192 * 768 + 768  # 14,705,408
    assert parts["encoder"] == 170_451_456  # the ASR encoder less its 512->768 input layer (395,520)
    assert parts["decoder"] == 64_397_192 and parts["ctc"] == 3_845_000


def test_lowrank_rows_share_front_ends_and_fusion(built):
    full = built["train_avsr_conformer_full_rank.yaml"]
    for parts in built.values():
        assert (parts["frontend"], parts["video_frontend"], parts["fusion"], parts["ctc"]) == (
            full["frontend"], full["video_frontend"], full["fusion"], full["ctc"])


def test_count_command_prints_paper_and_difference(capsys):
    assert count_params.main([str(CONF / "train_avsr_conformer_full_rank.yaml")]) == 0
    out = capsys.readouterr().out
    assert "268.43" in out and "268.5" in out and "-0.03%" in out
