"""Sizes that depend on the data and the launch, resolved when training starts.

* Per-GPU batches: ``batch_bins_per_gpu`` / ``batch_size_per_gpu`` (this package's options) become
  ESPnet's global ``batch_bins`` / ``batch_size`` = per-GPU value × the number of devices the
  batch is split over (DDP processes, or ``ngpu`` GPUs of one process, or 1 on the CPU).
* Optimiser steps of one epoch: counted with ESPnet's own batch sampler on the training shape
  files, exactly as ``AbsTask.build_sequence_iter_factory`` builds the batches (then
  ``num_iters_per_epoch`` and ``accum_grad`` as the trainer applies them), and given to the
  schedulers of :mod:`espnet_lrsms.train.schedulers` whose lengths are in epochs.

:func:`resolve_training_sizes` does both; the training tasks call it after the model and the
optimisers are built and before ESPnet builds the schedulers and iterators.
"""
import argparse
import logging
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from espnet2.samplers.build_batch_sampler import build_batch_sampler
from espnet2.tasks.abs_task import scheduler_classes

from espnet_lrsms.train.schedulers import EpochLengthScheduler

logger = logging.getLogger(__name__)

# relative difference between a given and the counted steps_per_epoch above which training warns
STEPS_PER_EPOCH_TOLERANCE = 0.05

PER_GPU_OPTIONS = {"batch_bins_per_gpu": "batch_bins", "batch_size_per_gpu": "batch_size"}


def add_per_gpu_batch_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Per-GPU batch (espnet_lrsms)")
    for option, global_option in PER_GPU_OPTIONS.items():
        group.add_argument(
            f"--{option}",
            type=int,
            default=None,
            help=f"{global_option} of one GPU (or CPU process); training sets --{global_option} to this "
            "times the number of devices the batch is split over, so a config means the same per-GPU "
            "batch at any GPU count",
        )


def num_batch_devices(args: argparse.Namespace) -> int:
    """Devices one mini-batch is split over: the DDP world size, else ``ngpu`` (DataParallel), else 1."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return max(1, args.ngpu)


def resolve_per_gpu_batch(args: argparse.Namespace, devices: int, defaults: Mapping[str, Any]) -> None:
    """Set ``args.batch_bins`` / ``args.batch_size`` from their per-GPU options, and log the global batch.

    ``defaults``: the parser's default of ``batch_bins`` and ``batch_size``; a value other than
    that next to its per-GPU option is an error (which one was meant?).
    """
    for option, global_option in PER_GPU_OPTIONS.items():
        per_gpu = getattr(args, option, None)
        if per_gpu is None:
            continue
        if per_gpu <= 0:
            raise ValueError(f"{option}: expected a positive number, got {per_gpu}")
        given = getattr(args, global_option)
        if given != defaults[global_option]:
            raise ValueError(
                f"give {option} or {global_option}, not both (got {option}={per_gpu}, {global_option}={given})"
            )
        setattr(args, global_option, per_gpu * devices)
    used = "batch_bins" if args.batch_type in ("numel", "length") else "batch_size"
    total = getattr(args, used)
    logger.info(
        "global batch: %s = %d over %d device(s) (%d per device), accum_grad %d: %d per optimiser step",
        used,
        total,
        devices,
        total // devices,
        args.accum_grad,
        total * args.accum_grad,
    )


def count_steps_per_epoch(args: argparse.Namespace, devices: int) -> int:
    """Optimiser steps in one training epoch, from the batches ESPnet's sequence iterator builds."""
    if args.num_iters_per_epoch is not None:
        iterations = args.num_iters_per_epoch
    else:
        if args.iterator_type != "sequence" or args.multiple_iterator:
            raise ValueError(
                "scheduler_conf.steps_per_epoch: counted only for iterator_type sequence without "
                f"multiple_iterator (got iterator_type={args.iterator_type}, multiple_iterator={args.multiple_iterator}); "
                "give steps_per_epoch, or lengths in steps"
            )
        utt2category = Path(args.train_data_path_and_name_and_type[0][0]).parent / "utt2category"
        sampler = build_batch_sampler(
            type=args.batch_type,
            shape_files=args.train_shape_file,
            fold_lengths=args.fold_length,
            batch_size=args.batch_size,
            batch_bins=args.batch_bins,
            sort_in_batch=args.sort_in_batch,
            sort_batch=args.sort_batch,
            drop_last=args.drop_last_iter,
            min_batch_size=devices if torch.distributed.is_initialized() else args.min_batch_size,
            utt2category_file=str(utt2category) if utt2category.exists() else None,
        )
        iterations = len(list(sampler))
    steps = iterations // args.accum_grad  # the trainer steps when iiter % accum_grad == 0
    if steps < 1:
        raise ValueError(
            f"one epoch has {iterations} mini-batch(es), fewer than accum_grad={args.accum_grad}: "
            "no optimiser step would be taken"
        )
    return steps


def resolve_epoch_lengths(args: argparse.Namespace, devices: int) -> Optional[int]:
    """Give every epoch-length scheduler its ``steps_per_epoch`` (counted when left out).

    A given value that differs from the counted one by more than 5 % is kept, with a warning
    naming both. ``total_epochs`` left out becomes ``max_epoch``. Returns the counted steps per
    epoch, or None when no scheduler needed them.
    """
    counted = None
    suffix_index = 1
    while hasattr(args, f"scheduler{'' if suffix_index == 1 else suffix_index}"):
        suffix = "" if suffix_index == 1 else str(suffix_index)
        suffix_index += 1
        name = getattr(args, f"scheduler{suffix}")
        scheduler_class = scheduler_classes.get(name) if name is not None else None
        if scheduler_class is None or not issubclass(scheduler_class, EpochLengthScheduler):
            continue
        key = f"scheduler{suffix}_conf"
        conf = dict(getattr(args, key) or {})
        in_epochs = [f"{n}_epochs" for n in scheduler_class.LENGTHS if conf.get(f"{n}_epochs") is not None]
        if "total_steps" not in conf and conf.get("total_epochs") is None:
            conf["total_epochs"] = args.max_epoch
            in_epochs.append("total_epochs")
        elif conf.get("total_epochs") is not None and conf["total_epochs"] != args.max_epoch:
            logger.warning(
                "%s.total_epochs=%s but max_epoch=%s: the schedule %s",
                key,
                conf["total_epochs"],
                args.max_epoch,
                "ends before training does" if conf["total_epochs"] < args.max_epoch else "is cut off when training stops",
            )
        if not in_epochs:
            setattr(args, key, conf)
            continue
        if counted is None:
            counted = count_steps_per_epoch(args, devices)
        given = conf.get("steps_per_epoch")
        if given is None:
            conf["steps_per_epoch"] = counted
            logger.info("%s.steps_per_epoch = %d optimiser steps, counted from the training batches", key, counted)
        elif abs(given - counted) > STEPS_PER_EPOCH_TOLERANCE * counted:
            logger.warning(
                "%s.steps_per_epoch=%d is given, but an epoch of this data and launch has %d optimiser steps "
                "(%+.0f %%): %s are measured in the given value. Leave steps_per_epoch out to use the counted one",
                key,
                given,
                counted,
                100.0 * (given - counted) / counted,
                ", ".join(in_epochs),
            )
        setattr(args, key, conf)
    return counted


def resolve_training_sizes(args: argparse.Namespace, defaults: Mapping[str, Any]) -> None:
    """Per-GPU batches, then the schedulers' steps per epoch (see the module docstring)."""
    devices = num_batch_devices(args)
    resolve_per_gpu_batch(args, devices, defaults)
    resolve_epoch_lengths(args, devices)
