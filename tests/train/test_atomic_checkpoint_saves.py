"""Atomic checkpoint saves of this package's Trainer (issue 33 item 14): only ESPnet's trainer and model
averaging save atomically (``torch.save`` is left alone for every other caller), a symlinked checkpoint is
written through to its real file, concurrent writers use their own temporary files, and the file and its
directory are fsynced before and after the rename."""
import os
import stat
import types

import espnet2.main_funcs.average_nbest_models as espnet_averaging
import espnet2.train.trainer as espnet_trainer
import pytest
import torch
from espnet2.train.trainer import Trainer

from espnet_lrsms.train.trainer import HookedTrainer, save_atomically


def run_as_espnet(monkeypatch, tmp_path, espnet_run):
    """``HookedTrainer.run`` with ESPnet's ``Trainer.run`` replaced by ``espnet_run(output_dir)``."""
    monkeypatch.setattr(Trainer, "run", classmethod(lambda cls, *args, trainer_options, **kw: espnet_run(
        trainer_options.output_dir)))
    model = torch.nn.Linear(2, 2)
    HookedTrainer.run(model, [torch.optim.SGD(model.parameters(), lr=0.1)], [None], None, None, None,
                      types.SimpleNamespace(output_dir=tmp_path), None)


def test_only_espnets_saving_modules_save_atomically(tmp_path, monkeypatch):
    original = torch.save
    seen = {}

    def espnet_run(out):
        seen["torch.save"] = torch.save
        seen["trainer"], seen["averaging"] = espnet_trainer.torch.save, espnet_averaging.torch.save
        seen["tensor"] = espnet_trainer.torch.Tensor  # everything else is torch's
        espnet_trainer.torch.save({"w": torch.ones(2)}, out / "checkpoint.pth")

    run_as_espnet(monkeypatch, tmp_path, espnet_run)
    assert seen["torch.save"] is original  # other callers in the process: untouched during the run
    assert seen["trainer"] is save_atomically and seen["averaging"] is save_atomically
    assert seen["tensor"] is torch.Tensor
    assert espnet_trainer.torch is torch and espnet_averaging.torch is torch  # restored after
    assert torch.equal(torch.load(tmp_path / "checkpoint.pth")["w"], torch.ones(2))


def test_a_symlinked_checkpoint_is_written_through_to_its_real_file(tmp_path, monkeypatch):
    storage = tmp_path / "storage"
    storage.mkdir()
    real = storage / "checkpoint.pth"
    torch.save({"epoch": 1}, real)
    os.chmod(real, 0o640)
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "checkpoint.pth").symlink_to(real)

    run_as_espnet(monkeypatch, exp, lambda out: espnet_trainer.torch.save({"epoch": 2}, out / "checkpoint.pth"))
    assert (exp / "checkpoint.pth").is_symlink() and os.readlink(exp / "checkpoint.pth") == str(real)
    assert torch.load(real)["epoch"] == 2  # the real file is the new one, not stale
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # its permissions kept
    assert sorted(p.name for p in storage.iterdir()) == ["checkpoint.pth"]  # no temporary file left


class SavesAgainWhilePickled:
    """A second writer of the same file, running while the first is half-way through its save."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        save_atomically({"writer": 2}, self.path)
        return (dict, ({"writer": 1},))


def test_concurrent_writers_of_one_file_use_their_own_temporary_files(tmp_path):
    target = tmp_path / "checkpoint.pth"
    save_atomically({"outer": SavesAgainWhilePickled(target)}, target)
    # the second writer finished first; the first one's temporary file survived it and was renamed last
    assert torch.load(target, weights_only=False) == {"outer": {"writer": 1}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth"]


def test_the_file_and_its_directory_are_fsynced(tmp_path, monkeypatch):
    synced = []
    fsync = os.fsync

    def recording_fsync(fd):
        info = os.fstat(fd)
        synced.append((info.st_ino, stat.S_ISDIR(info.st_mode)))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    target = tmp_path / "1epoch.pth"
    save_atomically({"w": torch.zeros(3)}, target)
    assert synced == [(target.stat().st_ino, False), (tmp_path.stat().st_ino, True)]  # the file, then the folder
    assert oct(stat.S_IMODE(target.stat().st_mode)) == oct(0o666 & ~current_umask())


def current_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
