"""A stand-in task for the ``--cpu_processes`` launcher's tests (tests/train/test_cpu_processes.py): its
``main`` is one rank's start-up as ESPnet makes it, so a launch is real and each rank imports only torch."""
import argparse
import json
import os
import signal
import time
from pathlib import Path

import torch


class ProbeTask:
    """A task whose ``main`` is one rank's start-up, a report (``rank<r>.json`` in ``--output_dir``: pid,
    threads, OMP_NUM_THREADS, the world summed over the ranks, the init method), then ``--probe``:
    ``end``; ``write`` (append to ``rank<r>.log`` until stopped, as a training writes exp/); ``die``
    (rank 1 is killed by SIGKILL, rank 0 waits)."""

    @classmethod
    def main(cls, cmd):
        from espnet2.train.distributed_utils import DistributedOption

        parser = argparse.ArgumentParser()
        for name in ("--output_dir", "--dist_init_method", "--dist_backend", "--dist_master_addr", "--probe"):
            parser.add_argument(name)
        for name in ("--dist_rank", "--dist_world_size", "--dist_master_port"):
            parser.add_argument(name, type=int)
        args, _ = parser.parse_known_args(cmd)
        option = DistributedOption(
            distributed=True, dist_backend=args.dist_backend, dist_init_method=args.dist_init_method,
            dist_world_size=args.dist_world_size, dist_rank=args.dist_rank, dist_master_addr=args.dist_master_addr,
            dist_master_port=args.dist_master_port, ngpu=0, multiprocessing_distributed=False,
        )
        option.init_options()
        option.init_torch_distributed()
        world = torch.ones(1)
        torch.distributed.all_reduce(world)
        out, rank = Path(args.output_dir), args.dist_rank
        report = {"pid": os.getpid(), "threads": torch.get_num_threads(), "omp": os.environ.get("OMP_NUM_THREADS"),
                  "world": int(world.item()), "init": args.dist_init_method}
        (out / f"rank{rank}.tmp").write_text(json.dumps(report))
        (out / f"rank{rank}.tmp").rename(out / f"rank{rank}.json")
        if args.probe == "write":
            with (out / f"rank{rank}.log").open("a") as log:
                while True:
                    log.write("step\n")
                    log.flush()
                    time.sleep(0.05)
        if args.probe == "die":
            if rank == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(120)
        torch.distributed.destroy_process_group()
