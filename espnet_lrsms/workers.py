"""Process pools for the stages' parallel passes, safe to open from any process.

A forked child inherits its parent's OpenMP state (GNU libgomp, torch's intra-op pool) but not the pool's threads:
once the parent has run one parallel torch op (a resize, a matrix product), the child's first parallel op (torchaudio's
resampling, a convolution) waits for threads that do not exist, for ever. Stage functions called from a long-lived
process that used torch before (the test suite, a notebook, the AVSR sweep after loading a model) hung this way.

So no pool here forks the calling process: workers are forked from multiprocessing's fork server, an interpreter
started once per process that imports the workers' modules (``preload``) and runs no torch op, so every worker
starts from a process whose OpenMP pool was never started.
"""
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Optional, Sequence


def process_pool(nj: int, initializer: Optional[Callable] = None, initargs: tuple = (),
                 preload: Sequence[str] = ()) -> ProcessPoolExecutor:
    """A pool of ``nj`` workers forked from the fork server. ``preload``: modules the server imports before its
    first fork, so workers start with them (effective when this process starts its server, i.e. its first pool)."""
    context = multiprocessing.get_context("forkserver")
    if preload:
        context.set_forkserver_preload(list(preload))
    return ProcessPoolExecutor(max_workers=max(1, nj), mp_context=context, initializer=initializer, initargs=initargs)
