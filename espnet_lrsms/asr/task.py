"""ESPnet's ASR task with this package's classes registered."""
import argparse
import logging
from pathlib import Path
from typing import List, Optional, Tuple, Union

import torch
from espnet2.asr.espnet_model import ESPnetASRModel
from espnet2.tasks.asr import ASRTask
from espnet2.torch_utils.initialize import initialize
from espnet2.train.trainer import Trainer
from typeguard import typechecked

from espnet_lrsms.fileio import load_weights_only, replaced_on_success
from espnet_lrsms.lowrank import load_exact_state_dict, materialize_spectral_init_, reinit_factorized_
from espnet_lrsms.packing import requirement_hint
from espnet_lrsms.train.cpu_processes import CPUProcessesTask
from espnet_lrsms.train.trainer import HookedTrainer
from espnet_lrsms.train.frobenius_decay import use_frobenius_decay
from espnet_lrsms.train.init_param import weights_only_init_param
from espnet_lrsms.train.epoch_steps import PER_GPU_OPTIONS, add_per_gpu_batch_arguments, resolve_training_sizes


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
    with replaced_on_success(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    logging.info("saved the initial weights to %s", path)
    return path


class InitialStateTrainer(HookedTrainer):
    """ESPnet's ``Trainer`` that first computes the deferred spectral init and saves the initial
    weights as ``<output_dir>/0epoch.pth``.

    The model arrives on its training device, before DDP broadcasts rank 0's weights, so the SVDs
    of LR-SMS Eq. 1 run on the GPU when training on one (none at all when resuming: the
    checkpoint's weights replace them).

    The numerical signatures (:mod:`espnet_lrsms.analysis.signatures`) compare a trained model with
    W(0); ESPnet's own epoch files start at ``1epoch.pth``. ``run`` is called after the model is built,
    initialised (``--init``) and loaded from ``--init_param``, before any resume or DDP wrapping, so
    the state dict saved is what the first update starts from. ESPnet's n-best clean-up removes only
    epochs ≥ 1, so the file stays.
    """

    @classmethod
    def before_run(cls, model, optimizers, train_iter_factory, trainer_options, distributed_option) -> None:
        resuming = trainer_options.resume and (Path(trainer_options.output_dir) / "checkpoint.pth").exists()
        if not resuming:
            materialize_spectral_init_(model)
        save_initial_state(model, trainer_options.output_dir, distributed_option)


class LowRankASRTask(CPUProcessesTask, ASRTask):
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

    (4) ``--batch_bins_per_gpu`` / ``--batch_size_per_gpu`` and schedules in epochs: the global
    batch and the optimiser steps of an epoch are derived from the launch and the data
    (:mod:`espnet_lrsms.train.epoch_steps`).

    (5) ``--init_param`` files are read weights-only (:mod:`espnet_lrsms.train.init_param`).

    (6) ``--ngpu 0 --cpu_processes N`` trains in N local CPU processes (:mod:`espnet_lrsms.train.cpu_processes`).
    """

    trainer = InitialStateTrainer

    @classmethod
    def main_worker(cls, args: argparse.Namespace):
        with weights_only_init_param():  # --init_param files: tensors only, never code
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
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        super().add_task_arguments(parser)
        add_per_gpu_batch_arguments(parser)

    @classmethod
    def build_model_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module) -> List[torch.optim.Optimizer]:
        """ESPnet's optimisers of ``args`` for ``model``; factorized layers with ``lowrank.frobenius_decay``
        get it instead of the optimizer's weight decay (a parameter group of their own)."""
        optimizers = super().build_optimizers(args, model)
        use_frobenius_decay(model, optimizers[0])
        return optimizers

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module) -> List[torch.optim.Optimizer]:
        """ESPnet's optimisers; then, as the last step before ``AbsTask.main_worker`` builds the
        schedulers (from ``scheduler_conf``) and the iterators (from ``batch_bins``), the per-GPU
        batch and the steps per epoch are resolved for this launch."""
        optimizers = cls.build_model_optimizers(args, model)
        parser = cls.get_parser()
        resolve_training_sizes(args, {name: parser.get_default(name) for name in PER_GPU_OPTIONS.values()})
        return optimizers

    @classmethod
    @typechecked
    def build_model(cls, args: argparse.Namespace) -> ESPnetASRModel:
        model = super().build_model(args)
        return finish_factorized_init(model, args)

    @classmethod
    def build_model_from_file(
        cls,
        config_file: Optional[Union[Path, str]] = None,
        model_file: Optional[Union[Path, str]] = None,
        device: str = "cpu",
    ) -> Tuple[torch.nn.Module, argparse.Namespace]:
        """ESPnet's, except that ``model_file`` is read weights-only and must fit the model exactly.

        ESPnet loads it with ``strict=False``: a low-rank checkpoint under a dense config, or one
        without ``frontend.*`` or ``ctc.*``, would decode garbage. Here any missing or unexpected key is
        an error naming the file, the config, the counts and a few keys. ``--init_param`` (a partial
        init by ESPnet's trainer) does not come through here and stays partial. A component name no
        registry holds gets the espnet_lrsms version to install (:mod:`espnet_lrsms.packing`).
        """
        if config_file is None and model_file is not None:
            config_file = Path(model_file).parent / "config.yaml"
        try:
            model, args = super().build_model_from_file(config_file, None, device)
        except ValueError as error:
            if " must be one of " not in str(error):  # ESPnet's ClassChoices: a name no registry holds
                raise
            raise ValueError(f"{config_file}: {error}; {requirement_hint(config_file)}") from None
        if model_file is not None:
            state = load_weights_only(model_file)
            state = state.get("module", state)  # a DeepSpeed checkpoint, as ESPnet unwraps it
            load_exact_state_dict(model, state, f"{model_file} (config {config_file})")
        return model, args


def finish_factorized_init(model: torch.nn.Module, args: argparse.Namespace) -> torch.nn.Module:
    """After ESPnet's ``--init``: re-draw the factorized layers from dense layers initialised the same
    way. With DeepSpeed (ESPnet's own trainer) also compute the spectral init now, on the CPU, so
    that every rank starts from the same weights."""
    if args.init is not None:
        count = reinit_factorized_(model, lambda dense: initialize(dense, args.init))
        logging.info("re-initialised %d factorized layers from dense %s init", count, args.init)
    if getattr(args, "use_deepspeed", False):
        materialize_spectral_init_(model)
    return model
