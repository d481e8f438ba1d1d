"""ESPnet's ``Trainer`` with hooks around its ``run``, the one override this package's tasks share."""
import os
import stat
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import torch
from espnet2.iterators.abs_iter_factory import AbsIterFactory
from espnet2.schedulers.abs_scheduler import AbsScheduler
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.train.distributed_utils import DistributedOption
from espnet2.train.trainer import Trainer

from espnet_lrsms.espnet_patches import atomic_checkpoint_saves
from espnet_lrsms.train.step_hooks import TrainingRun, attached_step_hooks, step_hooks


def _new_file_mode() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def save_atomically(obj, f, *args, **kwargs) -> None:
    """``torch.save(obj, f)`` that makes ``f`` appear complete or not at all (a file object is written as is).

    The bytes go to a temporary file of a unique name (``tempfile``) beside the file ``f`` names (through a
    symlink: beside the real file, which is replaced, the link kept), which is flushed and fsynced, given the
    old file's permissions (a new file: the umask's), renamed over it, and the directory is fsynced. A failure
    removes the temporary file and leaves the old file as it was.

    Why: ESPnet's ``Trainer.run`` saves ``checkpoint.pth``, ``<n>epoch.pth`` and the averaged models in place, so a
    full disk or a kill mid-save would leave a truncated file and lose the resume point."""
    if not isinstance(f, (str, os.PathLike)):
        return torch.save(obj, f, *args, **kwargs)
    target = Path(f).resolve()
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else _new_file_mode()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(obj, file, *args, **kwargs)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return None


class HookedTrainer(Trainer):
    """``Trainer.run`` between :meth:`before_run` and :meth:`after_run`, with the model's step hooks attached.

    ``run`` is called by ``AbsTask.main_worker`` with the model built, on its device, initialised and
    loaded from ``--init_param``, before any resume or DDP wrapping. Subclasses override the two
    methods for a task's own work (not ``run``); what acts around the optimizer steps (federated unit
    dropout, Frobenius decay, a LoRA strategy) is a step hook of the model instead
    (:mod:`espnet_lrsms.train.step_hooks`): every hook of ``step_hooks(model)`` is attached after
    :meth:`before_run` and detached, in reverse order, before :meth:`after_run`, also when training fails.
    While it runs, every checkpoint and model file ESPnet's trainer writes appears complete or not at
    all (:func:`save_atomically`, through :func:`espnet_lrsms.espnet_patches.atomic_checkpoint_saves`).
    """

    @classmethod
    def before_run(
        cls,
        model: AbsESPnetModel,
        optimizers: Sequence[torch.optim.Optimizer],
        train_iter_factory: AbsIterFactory,
        trainer_options,
        distributed_option: DistributedOption,
    ) -> None:
        """Called before training starts."""

    @classmethod
    def after_run(cls, model: AbsESPnetModel, trainer_options, distributed_option: DistributedOption, completed: bool) -> None:
        """Called when training ends, also when it fails (``completed`` False)."""

    @classmethod
    def run(
        cls,
        model: AbsESPnetModel,
        optimizers: Sequence[torch.optim.Optimizer],
        schedulers: Sequence[Optional[AbsScheduler]],
        train_iter_factory: AbsIterFactory,
        valid_iter_factory: AbsIterFactory,
        plot_attention_iter_factory: Optional[AbsIterFactory],
        trainer_options,
        distributed_option: DistributedOption,
    ) -> None:
        cls.before_run(model, optimizers, train_iter_factory, trainer_options, distributed_option)
        completed = False
        run = TrainingRun(model, train_iter_factory, trainer_options, distributed_option)
        try:
            with attached_step_hooks(step_hooks(model), optimizers, run), atomic_checkpoint_saves(save_atomically):
                super().run(
                    model=model,
                    optimizers=optimizers,
                    schedulers=schedulers,
                    train_iter_factory=train_iter_factory,
                    valid_iter_factory=valid_iter_factory,
                    plot_attention_iter_factory=plot_attention_iter_factory,
                    trainer_options=trainer_options,
                    distributed_option=distributed_option,
                )
            completed = True
        finally:
            cls.after_run(model, trainer_options, distributed_option, completed)
