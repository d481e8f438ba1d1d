"""Stage 2: speed-perturbed copy of a training set (ESPnet's ``<set>_sp``), without sox.

    python -m espnet_lrsms.bin.speed_perturb --data_dir data/train_960 --out_dir data/train_960_sp \\
        --factors 0.9 1.0 1.1 --nj 8

Any corpus stage 3 reads: wav.scp of commands ("... |"), ark offsets or files, with or without segments. See
espnet_lrsms.recipe.speed_perturb for what is written where.
"""
import argparse
import logging
import sys
from pathlib import Path

from espnet_lrsms.recipe.data_prep import DataPrepError
from espnet_lrsms.recipe.speed_perturb import perturb_data_dir


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True, help="the data directory to perturb (stage 1's)")
    parser.add_argument("--out_dir", type=Path, required=True, help="the perturbed data directory, e.g. data/<set>_sp")
    parser.add_argument("--factors", nargs="+", required=True,
                        help="speed factors, e.g. 0.9 1.0 1.1 (ids get sp<factor>- as written, ESPnet's)")
    parser.add_argument("--audio_dir", type=Path, default=None, help="where the resampled FLAC files go (default <out_dir>.audio)")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes")
    parser.add_argument("--on_error", default="stop", choices=("stop", "skip"),
                        help="a recording that cannot be read: stop naming it, or leave its perturbed copies out")
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    if args.nj < 1:
        parser.error(f"--nj must be at least 1, got {args.nj}")
    try:
        count = perturb_data_dir(args.data_dir, args.out_dir, args.factors, args.nj, args.audio_dir, args.on_error)
    except DataPrepError as error:
        logging.error("%s", error)
        return 1
    logging.info("wrote %s: %d utterances", args.out_dir, count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
