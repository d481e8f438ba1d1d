"""Stage 5: SentencePiece model + ESPnet token list from a Kaldi-style text file."""
import argparse
import logging
import sys
from pathlib import Path

from espnet_lrsms.recipe.tokenizer import train_tokenizer


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--text", type=Path, required=True)
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--nbpe", type=int, default=5000)
    parser.add_argument("--mode", choices=["unigram", "bpe", "char", "word"], default="unigram")
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    train_tokenizer(args.text, args.out_dir, args.nbpe, args.mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
