"""Compressing a dense ESPnet checkpoint to a rank schedule (truncated SVD), then loading it with Speech2Text."""
import csv

import pytest
import torch
import yaml

from espnet_lrsms.bin import compress_checkpoint
from espnet_lrsms.lowrank import FactorizedLinear
from espnet_lrsms.asr.task import LowRankASRTask
from espnet_lrsms.train.build import dummy_token_list

from conftest import REPO

TINY = REPO / "conf" / "demo" / "train_asr_lrsms_tiny.yaml"


@pytest.fixture(scope="module")
def dense_experiment(tmp_path_factory):
    """A dense tiny model (ESPnet's conformer/transformer) saved the way ESPnet's trainer saves one."""
    exp = tmp_path_factory.mktemp("dense_exp")
    conf = yaml.safe_load(TINY.read_text())
    conf["encoder"], conf["decoder"] = "conformer", "transformer"
    del conf["encoder_conf"]["lowrank"], conf["decoder_conf"]["lowrank"]
    (exp / "train.yaml").write_text(yaml.safe_dump(conf))
    args = LowRankASRTask.get_parser().parse_args(
        ["--config", str(exp / "train.yaml"), "--token_list", "x", "--output_dir", str(exp)]
    )
    args.token_list = dummy_token_list(12)
    torch.manual_seed(0)
    model = LowRankASRTask.build_model(args)
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), exp / "model.pth")
    return exp


def _schedule_file(tmp_path, mhsa, ffn):
    path = tmp_path / "lowrank.yaml"
    path.write_text(yaml.safe_dump({"encoder_conf": {"lowrank": {"mhsa": mhsa, "ffn": ffn}},
                                    "decoder_conf": {"lowrank": {"mhsa": mhsa, "ffn": ffn}}}))
    return path


def _compress(dense_experiment, schedule, out):
    return compress_checkpoint.main([
        "--asr_train_config", str(dense_experiment / "config.yaml"),
        "--asr_model_file", str(dense_experiment / "model.pth"),
        "--lowrank_from", str(schedule),
        "--output_dir", str(out),
    ])


def _encode(config, model_file):
    from espnet2.bin.asr_inference import Speech2Text

    s2t = Speech2Text(asr_train_config=config, asr_model_file=model_file)
    torch.manual_seed(3)
    speech = torch.randn(1, 16000)
    with torch.no_grad():
        out, _ = s2t.asr_model.encode(speech, torch.tensor([16000]))
    return s2t, out


def test_full_rank_compression_is_exact(dense_experiment, tmp_path):
    out = tmp_path / "full"
    assert _compress(dense_experiment, _schedule_file(tmp_path, 1.0, 1.0), out) == 0
    s2t, lowrank_out = _encode(out / "config.yaml", out / "model.pth")
    _, dense_out = _encode(dense_experiment / "config.yaml", dense_experiment / "model.pth")
    assert sum(isinstance(m, FactorizedLinear) for m in s2t.asr_model.modules()) == 2 * 9 + 1 * 10
    torch.testing.assert_close(lowrank_out, dense_out, atol=1e-4, rtol=1e-4)


def test_low_rank_compression_reports_ranks_and_errors(dense_experiment, tmp_path):
    out = tmp_path / "half"
    assert _compress(dense_experiment, _schedule_file(tmp_path, [0.25, 0.5], 0.5), out) == 0
    rows = list(csv.DictReader((out / "compression.csv").open()))
    by_name = {r["layer"]: r for r in rows}
    assert by_name["encoder.encoders.0.self_attn.linear_q"]["rank"] == "16"  # 0.25 x 64
    assert by_name["encoder.encoders.1.feed_forward.w_1"]["rank"] == "32"  # 0.5 x 64
    assert all(0 < float(r["relative_error"]) < 1 for r in rows)
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["encoder"] == "lowrank_conformer" and config["decoder"] == "lowrank_transformer"
    s2t, _ = _encode(out / "config.yaml", out / "model.pth")  # loads strictly: the guard would raise
    assert s2t.asr_model.encoder.encoders[0].self_attn.linear_q.rank == 16


def test_missing_lowrank_blocks_is_an_error(dense_experiment, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("encoder_conf: {output_size: 64}\n")
    with pytest.raises(SystemExit, match="neither encoder_conf.lowrank nor decoder_conf.lowrank"):
        _compress(dense_experiment, empty, tmp_path / "x")


@pytest.mark.parametrize("spelling", ["symlink", "relative"])
def test_output_dir_of_the_source_experiment_is_refused_before_writing(dense_experiment, tmp_path, monkeypatch, spelling):
    before = {p.name: p.read_bytes() for p in dense_experiment.iterdir() if p.is_file()}
    if spelling == "symlink":
        out = tmp_path / "link"
        out.symlink_to(dense_experiment)
    else:
        monkeypatch.chdir(dense_experiment.parent)
        out = dense_experiment.relative_to(dense_experiment.parent) / "." / ".." / dense_experiment.name
    with pytest.raises(SystemExit, match=rf"--output_dir {out}: the directory of --asr_train_config .*overwrite"):
        _compress(dense_experiment, _schedule_file(tmp_path, 0.5, 0.5), out)
    assert {p.name: p.read_bytes() for p in dense_experiment.iterdir() if p.is_file()} == before


def test_lowrank_blocks_without_any_alpha_are_refused_before_writing(dense_experiment, tmp_path):
    schedule = _schedule_file(tmp_path, None, None)  # lowrank: {mhsa: null, ffn: null}: every layer dense
    with pytest.raises(SystemExit, match=rf"--lowrank_from {schedule}: its lowrank: blocks .* factorize no layer"):
        _compress(dense_experiment, schedule, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("holds", [("config.yaml", "model.pth"), ("config.yaml",), ("model.pth",)])
def test_an_output_dir_that_holds_an_experiment_is_refused_before_writing(dense_experiment, tmp_path, holds):
    other = tmp_path / "expB"  # another experiment: its own config.yaml and/or model.pth
    other.mkdir()
    for name in holds:
        (other / name).write_text(f"expB's own {name}\n")
    with pytest.raises(SystemExit, match=rf"--output_dir {other}: already holds {holds[0]} .*not overwritten"):
        _compress(dense_experiment, _schedule_file(tmp_path, 0.5, 0.5), other)
    assert {p.name: p.read_text() for p in other.iterdir()} == {name: f"expB's own {name}\n" for name in holds}
    out = tmp_path / "empty"  # an existing but empty directory is fine
    out.mkdir()
    assert _compress(dense_experiment, _schedule_file(tmp_path, 0.5, 0.5), out) == 0
    assert {p.name for p in out.iterdir()} == {"config.yaml", "model.pth", "compression.csv"}
