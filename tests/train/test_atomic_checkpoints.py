"""ESPnet's trainer writes checkpoint.pth (the resume point) and <n>epoch.pth in place with ``torch.save``;
run through this package's Trainer, a save that fails halfway (full disk, a kill, an object that does not
pickle) leaves the previous file as it was, and a real training still writes loadable checkpoints."""
import errno
import hashlib
import types

import pytest
import torch
import espnet2.train.trainer as espnet_trainer
from espnet2.train.trainer import Trainer

from espnet_lrsms.asr.task import LowRankASRTask
from espnet_lrsms.train.trainer import HookedTrainer

from asr_test_data import train_command
from conftest import ALPHABET, write_tone_dataset


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


def _fail_unpicklable(monkeypatch):
    """The checkpoint holds an object that fails to pickle after the model's tensors."""
    return Unpicklable()


def _fail_disk_full(monkeypatch):
    """The disk fills up after part of the checkpoint is written."""

    def disk_full(obj, zip_file, *args, **kwargs):
        zip_file.write_record("archive/data.pkl", b"\x80\x02}q\x00(X", 7)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch.serialization, "_save", disk_full)
    return None


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("failure", [_fail_unpicklable, _fail_disk_full], ids=["unpicklable", "disk_full"])
def test_a_save_failing_halfway_leaves_the_previous_checkpoint(tmp_path, monkeypatch, failure):
    previous = {"model": {"w": torch.arange(4.0)}, "reporter": {"epoch": 1}}
    torch.save(previous, tmp_path / "checkpoint.pth")
    before = _digest(tmp_path / "checkpoint.pth")
    model = torch.nn.Linear(2, 2)

    def espnet_run(cls, model, optimizers, schedulers, train_iter_factory, valid_iter_factory,
                   plot_attention_iter_factory, trainer_options, distributed_option):
        extra = failure(monkeypatch)  # as ESPnet's Trainer.run saves: inline (its module's torch), to the final name
        espnet_trainer.torch.save({"model": model.state_dict(), "reporter": extra},
                                  trainer_options.output_dir / "checkpoint.pth")

    monkeypatch.setattr(Trainer, "run", classmethod(espnet_run))
    original_save = torch.save
    with pytest.raises((RuntimeError, OSError)):
        HookedTrainer.run(model, [torch.optim.SGD(model.parameters(), lr=0.1)], [None], None, None, None,
                          types.SimpleNamespace(output_dir=tmp_path), None)
    assert torch.save is original_save  # restored after the run
    assert _digest(tmp_path / "checkpoint.pth") == before
    assert torch.load(tmp_path / "checkpoint.pth", weights_only=True)["reporter"] == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth"]  # no temporary file left


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("atomic_data")
    write_tone_dataset(root / "train", 4, seed=0)
    (root / "tokens.txt").write_text("\n".join(["<blank>", "<unk>", "<space>", *ALPHABET, "<sos/eos>"]) + "\n")
    return root


def _train(data, out, epochs):
    LowRankASRTask.main(cmd=train_command(data, out, "--max_epoch", str(epochs), "--resume", "true",
                                          "--use_matplotlib", "false")[3:])


@pytest.mark.end_to_end
def test_real_training_writes_loadable_checkpoints_and_a_failed_save_keeps_the_last(small_data, tmp_path, monkeypatch):
    from espnet2.train.reporter import Reporter

    out = tmp_path / "exp"
    original_save = torch.save
    _train(small_data, out, 1)
    assert torch.save is original_save
    assert torch.load(out / "checkpoint.pth", weights_only=False)["reporter"]["epoch"] == 1
    assert set(torch.load(out / "1epoch.pth", weights_only=True)) == set(LowRankASRTask.build_model_from_file(
        out / "config.yaml", None)[0].state_dict())
    before = _digest(out / "checkpoint.pth")

    with monkeypatch.context() as patch:  # epoch 2's checkpoint fails halfway through the save
        state_dict = Reporter.state_dict
        patch.setattr(Reporter, "state_dict", lambda self: {**state_dict(self), "broken": Unpicklable()})
        with pytest.raises(RuntimeError, match="cannot pickle this"):
            _train(small_data, out, 2)
    assert torch.save is original_save
    assert _digest(out / "checkpoint.pth") == before  # the resume point of epoch 1, whole
    assert not (out / "checkpoint.tmp.pth").exists() and not (out / "2epoch.pth").exists()

    _train(small_data, out, 2)  # resumes from it
    checkpoint = torch.load(out / "checkpoint.pth", weights_only=False)
    assert checkpoint["reporter"]["epoch"] == 2 and set(checkpoint["model"]) == set(
        torch.load(out / "2epoch.pth", weights_only=True))
    assert not list(out.glob("*.tmp.pth"))
