"""ESPnet's ``Trainer`` with hooks around its ``run``, the one override this package's tasks share."""
import os
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

import torch
from espnet2.iterators.abs_iter_factory import AbsIterFactory
from espnet2.schedulers.abs_scheduler import AbsScheduler
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.train.distributed_utils import DistributedOption
from espnet2.train.trainer import Trainer

from espnet_lrsms.fileio import replaced_on_success
from espnet_lrsms.train.step_hooks import TrainingRun, attached_step_hooks, step_hooks


@contextmanager
def atomic_torch_save() -> Iterator[None]:
    """While the block runs, ``torch.save(obj, path)`` writes a temporary file beside ``path`` and renames it
    over ``path`` when complete (a file object is written as before); ``torch.save`` is restored after.

    Why: ESPnet's ``Trainer.run`` saves ``checkpoint.pth``, ``<n>epoch.pth`` and the averaged models in place,
    so a full disk or a kill mid-save would leave a truncated file and lose the resume point.
    """
    save = torch.save

    def atomic_save(obj, f, *args, **kwargs):
        if not isinstance(f, (str, os.PathLike)):
            return save(obj, f, *args, **kwargs)
        with replaced_on_success(f) as tmp:
            save(obj, tmp, *args, **kwargs)

    torch.save = atomic_save
    try:
        yield
    finally:
        torch.save = save


class HookedTrainer(Trainer):
    """``Trainer.run`` between :meth:`before_run` and :meth:`after_run`, with the model's step hooks attached.

    ``run`` is called by ``AbsTask.main_worker`` with the model built, on its device, initialised and
    loaded from ``--init_param``, before any resume or DDP wrapping. Subclasses override the two
    methods for a task's own work (not ``run``); what acts around the optimizer steps (federated unit
    dropout, Frobenius decay, a LoRA strategy) is a step hook of the model instead
    (:mod:`espnet_lrsms.train.step_hooks`): every hook of ``step_hooks(model)`` is attached after
    :meth:`before_run` and detached, in reverse order, before :meth:`after_run`, also when training fails.
    While it runs, every checkpoint and model file ESPnet's trainer writes appears complete or not at
    all (:func:`atomic_torch_save`).
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
            with attached_step_hooks(step_hooks(model), optimizers, run), atomic_torch_save():
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
