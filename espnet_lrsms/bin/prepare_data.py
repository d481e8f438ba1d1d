"""Stage 1: corpus → data/<set>/{wav.scp,text,utt2spk,spk2utt} (see espnet_lrsms.recipe.data_prep)."""
import argparse
import logging
import sys
from pathlib import Path

from espnet_lrsms.recipe.data_prep import DataPrepError, prepare_set


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", choices=["librispeech", "lrs3"], required=True)
    parser.add_argument("--corpus_root", type=Path, required=True)
    parser.add_argument("--sets", nargs="+", required=True, help="ESPnet set names, e.g. train_clean_100 dev_clean")
    parser.add_argument("--data_dir", type=Path, default=Path("data"))
    parser.add_argument("--nj", type=int, default=4)
    parser.add_argument("--on_error", choices=["stop", "skip"], default="stop")
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    try:
        for set_name in dict.fromkeys(args.sets):
            prepare_set(args.corpus, args.corpus_root, set_name, args.data_dir, args.nj, args.on_error)
    except DataPrepError as err:
        logging.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
