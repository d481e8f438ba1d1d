"""Stage 4: ESPnet's duration filter on prepared data directories (the training and validation sets).

    python -m espnet_lrsms.bin.filter_durations --data_dir data/train_960 data/dev \\
        --min_wav_duration 0.1 --max_wav_duration 20 --nj 8

Keeps an utterance of n samples when int(min·fs) < n < int(max·fs) (ESPnet's rule), lists the others in
data/<set>/filtered.txt and keeps the unfiltered set in data/<set>/org/, which a re-run filters again.
See espnet_lrsms.recipe.duration_filter.
"""
import argparse
import logging
import sys
from pathlib import Path

from espnet_lrsms.recipe.data_prep import DataPrepError, DurationFilter
from espnet_lrsms.recipe.duration_filter import filter_data_dir


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, nargs="+", required=True, help="data directories to filter")
    parser.add_argument("--min_wav_duration", type=float, default=0.1, help="seconds; ESPnet's default")
    parser.add_argument("--max_wav_duration", type=float, default=20.0, help="seconds; ESPnet's default")
    parser.add_argument("--fs", type=int, default=16000, help="sample rate of the audio (and of utt2num_samples)")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes reading audio headers")
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    if args.nj < 1:
        parser.error(f"--nj must be at least 1, got {args.nj}")
    try:
        durations = DurationFilter(args.min_wav_duration, args.max_wav_duration, args.fs)
        for data_dir in dict.fromkeys(args.data_dir):  # a set named twice is filtered once
            filter_data_dir(data_dir, durations, args.nj)
    except DataPrepError as error:
        logging.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
