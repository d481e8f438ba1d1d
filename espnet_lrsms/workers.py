"""Process pools for the stages' parallel passes, safe to open from any process.

A forked child inherits its parent's OpenMP state (GNU libgomp, torch's intra-op pool) but not the pool's threads:
once the parent has run one parallel torch op (a resize, a matrix product), the child's first parallel op (torchaudio's
resampling, a convolution) waits for threads that do not exist, for ever. Stage functions called from a long-lived
process that used torch before (the test suite, a notebook, the AVSR sweep after loading a model) hung this way.

So no pool here forks the calling process: workers are forked from multiprocessing's fork server, an interpreter
started once per process that imports the workers' modules (``preload``) and runs no torch op, so every worker
starts from a process whose OpenMP pool was never started.

The workers of one pool share the machine: each computes with its share of the cores, ``max(1, cores // nj)``
intra-op threads (:func:`threads_per_job`), unless ``OMP_NUM_THREADS`` is set (the user's number holds). Without it
every worker would start as many threads as there are cores, and ``nj`` workers would oversubscribe them: on a
2-core machine two decoders with two threads each ran 6.4× slower than with one each (GNU OpenMP's threads spin
while they wait for a core). The recipes' parallel jobs (decoding, statistics) get the same share from
``asr.sh`` (``OMP_NUM_THREADS``), where ESPnet's ``path.sh`` exports 1 for every stage.
"""
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Optional, Sequence


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, as ``nproc`` counts them)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_job(jobs: int) -> Optional[int]:
    """Each of ``jobs`` parallel CPU jobs' share of the cores, ``max(1, cores // jobs)``; None when
    ``OMP_NUM_THREADS`` is set (the user's number holds)."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, usable_cores() // max(1, jobs))


def _worker_threads(nj: int) -> Optional[int]:
    """What each of ``nj`` workers computes with: :func:`threads_per_job`, or the user's ``OMP_NUM_THREADS``
    (a fork server started earlier may hold a torch whose pool was sized before the variable was set)."""
    share = threads_per_job(nj)
    if share is not None:
        return share
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def _start_worker(threads: Optional[int], initializer: Optional[Callable], initargs: tuple) -> None:
    """A pool worker's first call: its share of the cores (torch's intra-op threads, and ``OMP_NUM_THREADS`` for a
    torch it imports later or a child it starts), then the pool's own initializer."""
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(threads)
    if initializer is not None:
        initializer(*initargs)


def process_pool(nj: int, initializer: Optional[Callable] = None, initargs: tuple = (),
                 preload: Sequence[str] = ()) -> ProcessPoolExecutor:
    """A pool of ``nj`` workers forked from the fork server, each with its share of the cores
    (:func:`threads_per_job`). ``preload``: modules the server imports before its first fork, so workers start
    with them (effective when this process starts its server, i.e. its first pool)."""
    context = multiprocessing.get_context("forkserver")
    if preload:
        context.set_forkserver_preload(list(preload))
    return ProcessPoolExecutor(max_workers=max(1, nj), mp_context=context, initializer=_start_worker,
                               initargs=(_worker_threads(nj), initializer, initargs))
