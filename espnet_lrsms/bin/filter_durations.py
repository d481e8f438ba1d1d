"""Stage 4: ESPnet's duration filter on the training and validation sets.

    python -m espnet_lrsms.bin.filter_durations --pair dump/raw/org/train_960 dump/raw/train_960 \\
        --pair dump/raw/org/dev dump/raw/dev --min_wav_duration 0.1 --max_wav_duration 20 --fs 16k
    python -m espnet_lrsms.bin.filter_durations --data_dir data/train data/dev   # in place (avsr.sh)

Keeps an utterance of n samples when int(min·fs) < n < int(max·fs) (ESPnet's rule) and lists the others in
<set>/filtered.txt. --pair ORG OUT (asr.sh, ESPnet's layout): filters stage 3's unfiltered dump ORG into OUT.
--data_dir: filters in place, keeping the unfiltered set in <set>/org/, which a re-run filters again.
Lengths come from utt2num_samples (stage 3 writes it), else from the audio headers (commands refused).
See espnet_lrsms.recipe.duration_filter.
"""
import argparse
import logging
import sys
from pathlib import Path

from espnet_lrsms.recipe.data_prep import DataPrepError
from espnet_lrsms.recipe.duration_filter import DurationFilter, filter_data_dir
from espnet_lrsms.recipe.format_audio import parse_fs


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, nargs="+", default=[], help="data directories to filter in place")
    parser.add_argument("--pair", type=Path, nargs=2, action="append", default=[], metavar=("ORG", "OUT"),
                        help="filter the unfiltered set ORG into OUT (ESPnet's dump/raw/org/<set> -> dump/raw/<set>)")
    parser.add_argument("--min_wav_duration", type=float, default=0.1, help="seconds; ESPnet's default")
    parser.add_argument("--max_wav_duration", type=float, default=20.0, help="seconds; ESPnet's default")
    parser.add_argument("--fs", default="16000", help="sample rate of the audio and of utt2num_samples (16k or 16000)")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes reading audio headers")
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    if args.nj < 1:
        parser.error(f"--nj must be at least 1, got {args.nj}")
    if not args.data_dir and not args.pair:
        parser.error("give --data_dir or --pair")
    try:
        durations = DurationFilter(args.min_wav_duration, args.max_wav_duration, parse_fs(args.fs))
        for data_dir in dict.fromkeys(args.data_dir):  # a set named twice is filtered once
            filter_data_dir(data_dir, durations, args.nj)
        for org, out in dict.fromkeys(tuple(pair) for pair in args.pair):
            filter_data_dir(out, durations, args.nj, source=org)
    except DataPrepError as error:
        logging.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
