"""Training saves the initial weights (0epoch.pth); numerical signatures compare them with a trained epoch."""
import csv
from types import SimpleNamespace

import pytest
import torch

from espnet_lrsms.analysis.numerical_signatures import weight_changes
from espnet_lrsms.bin import analysis_numerical_signatures as cli
from espnet_lrsms.asr.task import InitialStateTrainer, LowRankASRTask, save_initial_state

torch.set_num_threads(1)


@pytest.fixture
def trained(tone_experiment):
    """The session's tone-data experiment (conftest.py): W(0) in 0epoch.pth, 2 epochs."""
    return tone_experiment


@pytest.mark.end_to_end
def test_training_saves_initial_weights_that_training_then_changes(trained):
    assert LowRankASRTask.trainer is InitialStateTrainer
    initial = torch.load(trained / "0epoch.pth", map_location="cpu")
    after = torch.load(trained / "1epoch.pth", map_location="cpu")
    assert initial.keys() == after.keys()
    assert not (trained / "0epoch.pth.tmp").exists()
    key = "encoder.encoders.0.self_attn.linear_q.u"
    assert not torch.equal(initial[key], after[key])
    changed = [k for k in initial if initial[k].is_floating_point() and not torch.equal(initial[k], after[k])]
    assert len(changed) > 0.9 * sum(v.is_floating_point() for v in initial.values())
    # W(0) is the spectral init: U and V^T carry sqrt(Sigma) column for row (Eq. 1)
    torch.testing.assert_close(initial[key].norm(dim=0), initial[key.replace(".u", ".vt")].norm(dim=1))


@pytest.mark.end_to_end
def test_signature_cli_writes_csv_and_heatmap(trained, capsys):
    assert cli.main(["--exp_dir", str(trained)]) == 0  # default W(t): the last epoch file
    out = trained / "analysis"
    with open(out / "signatures_2epoch.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    modules = {(r["submodel"], r["module"]) for r in rows}
    # encoder: 5 attention + 4 FFN + 3 conv weights per block, 2 blocks; decoder: 8 attention + 2 FFN, 1 block
    assert len(modules) == 12 + 10 and len(rows) == 2 * 12 + 10
    assert ("encoder", "self_attn.linear_q") in modules and ("encoder", "conv_module.depthwise_conv") in modules
    for submodel, module in modules:
        values = [float(r["signature"]) for r in rows if (r["submodel"], r["module"]) == (submodel, module)]
        assert all(0.0 <= v <= 1.0 for v in values) and max(values) == 1.0, (module, values)
    assert all(float(r["change"]) > 0 for r in rows)
    png = (out / "signatures_2epoch.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "numerical signatures of" in capsys.readouterr().out

    # the best-model symlink by name; missing W(0) is named
    assert cli.main(["--exp_dir", str(trained), "--checkpoint", "valid.acc.best.pth"]) == 0
    assert (out / "signatures_valid.acc.best.csv").is_file()
    with pytest.raises(SystemExit, match="no initial weights"):
        cli.main(["--exp_dir", str(trained), "--initial", str(trained / "missing.pth")])


def test_signature_values_on_planted_changes():
    init = {f"encoder.encoders.{b}.self_attn.linear_q.weight": torch.zeros(4, 3) for b in range(3)}
    init["encoder.encoders.0.feed_forward.w_1.u"] = torch.ones(4, 1)
    init["encoder.encoders.0.feed_forward.w_1.vt"] = torch.ones(1, 3)
    init["ctc.ctc_lo.weight"] = torch.zeros(5, 4)  # outside the blocks: left out
    now = dict(init)
    for b, step in enumerate([1.0, 4.0, 2.0]):
        now[f"encoder.encoders.{b}.self_attn.linear_q.weight"] = torch.full((4, 3), step)
    now["encoder.encoders.0.feed_forward.w_1.u"] = torch.full((4, 1), 2.0)  # U V^T: all ones -> all twos
    rows = {(r["module"], r["block"]): r for r in weight_changes(init, now)}
    assert len(rows) == 4
    assert [rows[("self_attn.linear_q", b)]["signature"] for b in range(3)] == [0.25, 1.0, 0.5]
    assert rows[("self_attn.linear_q", 1)]["change"] == pytest.approx(4.0 * 12**0.5)
    w_1 = rows[("feed_forward.w_1", 0)]
    assert (w_1["signature"], w_1["relative_change"]) == (1.0, pytest.approx(1.0))
    with pytest.raises(ValueError, match="different layers"):
        weight_changes(init, {k: v for k, v in now.items() if "w_1" not in k})


def test_initial_state_is_written_once_and_only_by_rank_zero(tmp_path):
    model = torch.nn.Linear(3, 2)
    first = save_initial_state(model, tmp_path)
    assert first == tmp_path / "0epoch.pth"
    saved = torch.load(first)
    with torch.no_grad():
        model.weight.add_(1.0)  # e.g. a resumed run: the file keeps the true initial weights
    assert save_initial_state(model, tmp_path) is None
    torch.testing.assert_close(torch.load(first)["weight"], saved["weight"])
    other = tmp_path / "rank1"
    assert save_initial_state(model, other, SimpleNamespace(distributed=True, dist_rank=1)) is None
    assert not (other / "0epoch.pth").exists()
    assert save_initial_state(model, other, SimpleNamespace(distributed=True, dist_rank=0)) is not None


def test_deepspeed_falls_back_to_espnets_trainer(monkeypatch):
    from espnet2.tasks.asr import ASRTask
    from espnet2.train.trainer import Trainer

    seen = []
    monkeypatch.setattr(ASRTask, "main_worker", classmethod(lambda cls, args: seen.append(cls.trainer)))
    LowRankASRTask.main_worker(SimpleNamespace(use_deepspeed=True))
    LowRankASRTask.main_worker(SimpleNamespace(use_deepspeed=False))
    assert seen == [Trainer, InitialStateTrainer] and LowRankASRTask.trainer is InitialStateTrainer
