"""Data-parallel training on the CPU in N local processes: ``--ngpu 0 --cpu_processes N``.

ESPnet starts one process per GPU itself (``--ngpu N --multiprocessing_distributed true``), but CPU
processes only through an outside launcher that gives each its rank (``espnet2.bin.launch --host``
over SSH, Slurm, or ``torchrun``). With ``--cpu_processes N`` the training entry points of this
package start the N processes themselves: each runs the task's ``main`` with ESPnet's options for
one rank of an external launch (``--multiprocessing_distributed false --dist_rank r
--dist_world_size N --dist_backend gloo``, ``env://`` on a free local port), so ESPnet wraps the
model in ``DistributedDataParallel`` and shards every batch over the ranks as it does on GPUs.
"""
import argparse
import sys
import time
from typing import Optional, Sequence

import torch

from espnet2.train.distributed_utils import free_port


def add_cpu_processes_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument_group("CPU data parallel (espnet_lrsms)").add_argument(
        "--cpu_processes",
        type=int,
        default=1,
        help="with --ngpu 0: train in this many local processes (DistributedDataParallel over gloo; "
        "the global batch is split over them as over GPUs)",
    )


def cpu_world_size(args: argparse.Namespace) -> int:
    """The processes to start for ``args`` (1: none, train in this one). A bad combination is an error."""
    n = getattr(args, "cpu_processes", 1)
    if n is None or n == 1:
        return 1
    if n < 1:
        raise ValueError(f"--cpu_processes: expected a number >= 1, got {n}")
    if args.ngpu != 0:
        raise ValueError(f"--cpu_processes {n} trains on the CPU: give --ngpu 0 (got --ngpu {args.ngpu})")
    if args.dist_rank is not None or args.dist_launcher is not None:
        raise ValueError(
            f"--cpu_processes {n} starts the ranks itself: drop --dist_rank / --dist_launcher (got "
            f"{args.dist_rank} / {args.dist_launcher})"
        )
    return n


def _rank_main(task, cmd: Sequence[str]) -> None:
    task.main(cmd=cmd)


def run_cpu_processes(task, cmd: Optional[Sequence[str]], world_size: int) -> None:
    """``task.main`` in ``world_size`` spawned processes, one rank each; returns when all succeeded,
    exits non-zero naming the first rank that failed (the others are stopped)."""
    cmd = list(sys.argv[1:] if cmd is None else cmd)
    launch = [
        "--cpu_processes", "1", "--multiprocessing_distributed", "false", "--dist_world_size", str(world_size),
        "--dist_backend", "gloo", "--dist_init_method", "env://", "--dist_master_addr", "127.0.0.1",
        "--dist_master_port", str(free_port()),
    ]
    context = torch.multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_rank_main, args=(task, [*cmd, *launch, "--dist_rank", str(rank)]), daemon=False)
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    failed = []
    try:
        while not failed and any(p.is_alive() for p in processes):
            time.sleep(0.5)
            failed = [(r, p.exitcode) for r, p in enumerate(processes) if p.exitcode not in (None, 0)]
    finally:
        for process in processes:  # a rank that failed leaves the others waiting for it
            if process.is_alive():
                process.terminate()
            process.join()
    if failed:
        rank, code = failed[0]
        raise SystemExit(f"--cpu_processes {world_size}: rank {rank} exited with code {code} (its error is logged above)")


class CPUProcessesTask:
    """Mixin placed before an ESPnet task class: ``--cpu_processes`` among the task's options, and its
    ``main`` run in that many local processes when ``--ngpu 0 --cpu_processes N`` asks for them."""

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        super().add_task_arguments(parser)
        add_cpu_processes_argument(parser)

    @classmethod
    def main(cls, args: Optional[argparse.Namespace] = None, cmd: Optional[Sequence[str]] = None):
        """ESPnet's ``main``; with ``--ngpu 0 --cpu_processes N``, in N local processes."""
        if args is None and (world_size := cpu_world_size(cls.get_parser().parse_args(cmd))) > 1:
            return run_cpu_processes(cls, cmd, world_size)
        return super().main(args=args, cmd=cmd)
