#!/usr/bin/env python3
"""Parallel CPU decoding jobs with every core each vs their share of the cores, side by side.

What ``utils/run_local.sh`` (and the stages' worker pools) change: ``--jobs`` decoders run at once, as stage 12's
``--inference_nj`` jobs do; each either keeps torch's default (as many intra-op threads as cores: the jobs then
start ``jobs × cores`` threads) or gets ``max(1, cores // jobs)`` (what the runner exports as
``OMP_NUM_THREADS``). The model is the demo's (``conf/demo/train_asr_lrsms_tiny.yaml``) with random weights, the
audio random, decoded with the demo's decoding options (beam 8, CTC weight 0.3) up to ``--maxlenratio``. The two
settings alternate (A, B, A, B, ...) ``--rounds`` times; the median wall time of a round (all jobs started to
all done) is reported, and A's over B's. Nothing is asserted.

    .venv/bin/python bench/decode_threads.py                 # 2 jobs, 4 utterances each: ~1 min on 2 cores
"""
import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_time import write_trained_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "egs2" / "librispeech" / "asr1" / "conf" / "demo" / "train_asr_lrsms_tiny.yaml"


def decode_job(config: str, model: str, threads: int, utterances: int, seconds: float, maxlenratio: float) -> float:
    """One decoding job: its torch threads, Speech2Text, ``utterances`` random utterances; seconds spent decoding."""
    import torch

    torch.set_num_threads(threads)
    import espnet_lrsms  # noqa: F401  (registers the classes, as the recipe's entry point does)
    from espnet2.bin.asr_inference import Speech2Text

    s2t = Speech2Text(config, model, device="cpu", beam_size=8, ctc_weight=0.3, nbest=1, maxlenratio=maxlenratio)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(utterances):
        s2t(torch.as_tensor(rng.standard_normal(int(seconds * 16000)).astype(np.float32) * 0.1))
    return time.perf_counter() - start


def one_round(pool, files, threads: int, args) -> float:
    """Wall time of ``args.jobs`` jobs decoding at once (model loading excluded: each job times its own loop)."""
    jobs = [pool.apply_async(decode_job, (*files, threads, args.utterances, args.seconds, args.maxlenratio))
            for _ in range(args.jobs)]
    return max(job.get() for job in jobs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="decoders at once (stage 12's --inference_nj)")
    parser.add_argument("--utterances", type=int, default=4, help="random utterances per job")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--maxlenratio", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    from espnet_lrsms.workers import usable_cores

    cores = usable_cores()
    settings = {"every core each (torch's default)": cores, "their share (run_local.sh)": max(1, cores // args.jobs)}
    times = {name: [] for name in settings}
    with tempfile.TemporaryDirectory() as tmp:
        files = tuple(str(f) for f in write_trained_model(CONFIG, Path(tmp), vocab_size=30))
        context = multiprocessing.get_context("spawn")  # fresh interpreters: each job sizes its own thread pool
        for _ in range(args.rounds):
            for name, threads in settings.items():
                with context.Pool(args.jobs) as pool:
                    times[name].append(one_round(pool, files, threads, args))
    print(f"{args.jobs} decoding jobs at once on {cores} cores, {args.utterances} × {args.seconds:g} s each, "
          f"median of {args.rounds} rounds")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for (name, threads), median in zip(settings.items(), medians.values()):
        print(f"  {name:36s} {threads} thread(s) per job: {median:6.1f} s")
    slow, fast = medians.values()
    print(f"  ratio: {slow / fast:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
