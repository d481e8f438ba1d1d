"""Data-parallel training on the CPU in N local processes: ``--ngpu 0 --cpu_processes N``.

ESPnet starts one process per GPU itself (``--ngpu N --multiprocessing_distributed true``), but CPU
processes only through an outside launcher that gives each its rank (``espnet2.bin.launch --host``
over SSH, Slurm, or ``torchrun``). With ``--cpu_processes N`` the training entry points of this
package start the N processes themselves: each runs the task's ``main`` with ESPnet's options for
one rank of an external launch (``--multiprocessing_distributed false --dist_rank r
--dist_world_size N --dist_backend gloo``), so ESPnet wraps the model in ``DistributedDataParallel``
and shards every batch over the ranks as it does on GPUs.

The launch, as this module does it:

* the ranks meet through a file in the output directory (torch's ``file://`` rendezvous,
  :data:`RENDEZVOUS`), not a port that another launch could take; the file is removed before the
  ranks start (a killed run's file would hold its keys) and when they end;
* each rank computes with ``max(1, cores // N)`` threads (``torch.set_num_threads``, and
  ``OMP_NUM_THREADS`` for its children) unless ``OMP_NUM_THREADS`` is set; N over the cores is warned of;
* SIGTERM, SIGHUP or SIGINT to the launcher stops and reaps the ranks, then it exits with 128 + the signal;
* ``--collect_stats true`` runs in this one process: the statistics are one pass over every key.
"""
import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch

from espnet_lrsms.workers import threads_per_job, usable_cores

logger = logging.getLogger(__name__)

RENDEZVOUS = ".dist_init_cpu_processes"  # in the output directory (ESPnet's launcher names its own .dist_init_<uuid>)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
POLL_S = 0.2
STOP_GRACE_S = 5.0  # after SIGTERM, a rank still alive is killed


class CPUProcessesError(ValueError):
    """A refused ``--cpu_processes`` combination; the message names the options."""


def add_cpu_processes_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument_group("CPU data parallel (espnet_lrsms)").add_argument(
        "--cpu_processes",
        type=int,
        default=1,
        help="with --ngpu 0: train in this many local processes (DistributedDataParallel over gloo; "
        "the global batch is split over them as over GPUs; each computes with cores // N threads unless "
        "OMP_NUM_THREADS is set). --collect_stats true always runs in one process",
    )


def cpu_world_size(args: argparse.Namespace) -> int:
    """The processes to start for ``args`` (1: none, run in this one). A bad combination is an error."""
    n = getattr(args, "cpu_processes", 1)
    if n is None or n == 1:
        return 1
    if n < 1:
        raise CPUProcessesError(f"--cpu_processes: expected a number >= 1, got {n}")
    if getattr(args, "collect_stats", False):
        return 1  # one pass over every key: N ranks would each make it and write the same files
    if args.ngpu != 0:
        raise CPUProcessesError(f"--cpu_processes {n} trains on the CPU: give --ngpu 0 (got --ngpu {args.ngpu})")
    if args.dist_rank is not None or args.dist_launcher is not None:
        raise CPUProcessesError(
            f"--cpu_processes {n} starts the ranks itself: drop --dist_rank / --dist_launcher (got "
            f"{args.dist_rank} / {args.dist_launcher})"
        )
    return n


def threads_per_rank(world_size: int) -> Optional[int]:
    """Each rank's share of the cores, ``max(1, cores // world_size)``; None when ``OMP_NUM_THREADS``
    is set (the user's number holds). Warns when the ranks outnumber the cores."""
    cores = usable_cores()
    if world_size > cores:
        logger.warning(
            f"--cpu_processes {world_size}: more processes than the {cores} CPU core(s) this machine gives "
            "them; they share the cores"
        )
    return threads_per_job(world_size)


def _rank_main(task, cmd: Sequence[str], threads: Optional[int]) -> None:
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)  # for the rank's own child processes
        torch.set_num_threads(threads)
    task.main(cmd=cmd)


def _describe(rank: int, code: int) -> str:
    if code < 0:
        return f"rank {rank} was killed by {signal.Signals(-code).name}"
    return f"rank {rank} exited with code {code} (its error is logged above)"


def _stop(processes) -> None:
    """SIGTERM to every started rank still alive, SIGKILL to one that outlives :data:`STOP_GRACE_S`; all reaped."""
    started = [p for p in processes if p.pid is not None]
    for process in started:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for process in started:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def run_cpu_processes(task, cmd: Optional[Sequence[str]], world_size: int, output_dir) -> None:
    """``task.main`` in ``world_size`` spawned processes, one rank each, meeting through a file in
    ``output_dir``; returns when all succeeded. Exits non-zero with one line naming the ranks that
    failed (the others are stopped), or the signal that stopped the launch."""
    cmd = list(sys.argv[1:] if cmd is None else cmd)
    threads = threads_per_rank(world_size)
    rendezvous = Path(output_dir).absolute() / RENDEZVOUS
    rendezvous.parent.mkdir(parents=True, exist_ok=True)
    rendezvous.unlink(missing_ok=True)  # a killed run's store would hand its keys to this one
    launch = [
        "--cpu_processes", "1", "--multiprocessing_distributed", "false", "--dist_world_size", str(world_size),
        "--dist_backend", "gloo", "--dist_init_method", f"file://{rendezvous}",
    ]
    context = torch.multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_rank_main, args=(task, [*cmd, *launch, "--dist_rank", str(rank)], threads), daemon=False)
        for rank in range(world_size)
    ]
    stopped_by: List[int] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():  # (signal handlers can only be set there)
        previous = {s: signal.signal(s, lambda signum, frame: stopped_by.append(signum)) for s in STOP_SIGNALS}
    failed: List[Tuple[int, int]] = []
    try:
        for process in processes:
            if stopped_by:
                break
            process.start()
        while not failed and not stopped_by and any(p.is_alive() for p in processes):
            time.sleep(POLL_S)
            failed = [(r, p.exitcode) for r, p in enumerate(processes) if p.exitcode not in (None, 0)]
    finally:
        _stop(processes)  # a rank that failed leaves the others waiting for it
        for s, handler in previous.items():
            signal.signal(s, handler)
        rendezvous.unlink(missing_ok=True)
    if stopped_by:
        name = signal.Signals(stopped_by[0]).name
        print(f"--cpu_processes {world_size}: stopped by {name}; the ranks were stopped", file=sys.stderr, flush=True)
        raise SystemExit(128 + stopped_by[0])
    if failed:
        raise SystemExit(f"--cpu_processes {world_size}: " + "; ".join(_describe(r, c) for r, c in failed))


class CPUProcessesTask:
    """Mixin placed before an ESPnet task class: ``--cpu_processes`` among the task's options, and its
    ``main`` run in that many local processes when ``--ngpu 0 --cpu_processes N`` asks for them."""

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        super().add_task_arguments(parser)
        add_cpu_processes_argument(parser)

    @classmethod
    def main(cls, args: Optional[argparse.Namespace] = None, cmd: Optional[Sequence[str]] = None):
        """ESPnet's ``main``; with ``--ngpu 0 --cpu_processes N``, in N local processes. A refused
        ``--cpu_processes`` exits with one line."""
        if args is None:
            parsed = cls.get_parser().parse_args(cmd)
            try:
                world_size = cpu_world_size(parsed)
            except CPUProcessesError as error:
                raise SystemExit(str(error)) from None
            if world_size > 1:
                return run_cpu_processes(cls, cmd, world_size, parsed.output_dir or ".")
        return super().main(args=args, cmd=cmd)
