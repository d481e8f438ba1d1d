"""ESPnet's ``Trainer`` with hooks around its ``run``, the one override this package's tasks share."""
from typing import Optional, Sequence

import torch
from espnet2.iterators.abs_iter_factory import AbsIterFactory
from espnet2.schedulers.abs_scheduler import AbsScheduler
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.train.distributed_utils import DistributedOption
from espnet2.train.trainer import Trainer

from espnet_lrsms.asr.unit_dropout import hold_dropped_units


class HookedTrainer(Trainer):
    """``Trainer.run`` between :meth:`before_run` and :meth:`after_run`.

    ``run`` is called by ``AbsTask.main_worker`` with the model built, on its device, initialised and
    loaded from ``--init_param``, before any resume or DDP wrapping. Subclasses override the hooks,
    not ``run``. While it runs, the units that federated dropout leaves out of a step stay unchanged
    through that optimizer step (:func:`espnet_lrsms.asr.unit_dropout.hold_dropped_units`).
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
        held = hold_dropped_units(model, optimizers)
        try:
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
            for handle in held:
                handle.remove()
            cls.after_run(model, trainer_options, distributed_option, completed)
