"""ESPnet's ASR task with this package's classes registered."""
import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

import torch
from espnet2.asr.espnet_model import ESPnetASRModel
from espnet2.iterators.abs_iter_factory import AbsIterFactory
from espnet2.schedulers.abs_scheduler import AbsScheduler
from espnet2.tasks.asr import ASRTask
from espnet2.torch_utils.initialize import initialize
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.train.distributed_utils import DistributedOption
from espnet2.train.trainer import Trainer
from typeguard import typechecked

import espnet_lrsms  # noqa: F401  (registers the classes; also in spawned DDP workers, see below)
from espnet_lrsms.lowrank import reinit_factorized_


INITIAL_CHECKPOINT = "0epoch.pth"


def save_initial_state(model: torch.nn.Module, output_dir, distributed_option=None) -> Optional[Path]:
    """Write ``output_dir/0epoch.pth``: the model's state dict before the first update, W(0).

    Only the process of rank 0 writes (all of them when not distributed), only if the file does not
    exist yet (so a resumed run keeps the true initial weights), to a temporary name then renamed.
    Returns the path written, or None.
    """
    if distributed_option is not None and distributed_option.distributed and distributed_option.dist_rank != 0:
        return None
    path = Path(output_dir) / INITIAL_CHECKPOINT
    if path.exists():
        logging.info("%s exists: keeping the initial weights it holds", path)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    tmp.replace(path)
    logging.info("saved the initial weights to %s", path)
    return path


class InitialStateTrainer(Trainer):
    """ESPnet's ``Trainer`` that first saves the initial weights as ``<output_dir>/0epoch.pth``.

    The numerical signatures (:mod:`espnet_lrsms.analysis.signatures`) compare a trained model with
    W(0); ESPnet's own epoch files start at ``1epoch.pth``. ``run`` is called after the model is built,
    initialised (``--init``) and loaded from ``--init_param``, before any resume or DDP wrapping, so
    the state dict saved is what the first update starts from. ESPnet's n-best clean-up removes only
    epochs ≥ 1, so the file stays.
    """

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
        save_initial_state(model, trainer_options.output_dir, distributed_option)
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


class LowRankASRTask(ASRTask):
    """``ASRTask`` that (1) lives in this package, (2) keeps the spectral init under ``--init`` and
    (3) saves the initial weights.

    (1) With ``--ngpu N --multiprocessing_distributed true`` ESPnet starts each worker by spawning
    ``cls.main_worker``; the worker unpickles this class, which imports ``espnet_lrsms`` and so
    registers the low-rank classes there too.

    (2) ESPnet's ``--init xavier_uniform`` (or any other) re-draws every matrix after the model is
    built, U and Vᵀ included, which would undo the SVD init. After that, each factorized layer is
    drawn again from a dense layer initialised by the same ESPnet ``initialize``.

    (3) Training saves the initial weights as ``<output_dir>/0epoch.pth`` (:class:`InitialStateTrainer`),
    except with ``--use_deepspeed``, where ESPnet accepts only its own ``Trainer``.
    """

    trainer = InitialStateTrainer

    @classmethod
    def main_worker(cls, args: argparse.Namespace):
        if getattr(args, "use_deepspeed", False) and cls.trainer is InitialStateTrainer:
            # ESPnet's DeepSpeed path refuses any trainer but its default one
            logging.warning("--use_deepspeed: the initial weights (0epoch.pth) are not saved")
            cls.trainer = Trainer
            try:
                return super().main_worker(args)
            finally:
                cls.trainer = InitialStateTrainer
        return super().main_worker(args)

    @classmethod
    @typechecked
    def build_model(cls, args: argparse.Namespace) -> ESPnetASRModel:
        model = super().build_model(args)
        if args.init is not None:
            count = reinit_factorized_(model, lambda dense: initialize(dense, args.init))
            logging.info("re-initialised %d factorized layers from dense %s init", count, args.init)
        return model
