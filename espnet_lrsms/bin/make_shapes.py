"""Stage 3: speech_shape and text_shape.bpe for ESPnet's batch samplers (see espnet_lrsms.recipe.shapes)."""
import argparse
import logging
import sys
from pathlib import Path

from espnet_lrsms.recipe.shapes import write_shapes


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--bpemodel", type=Path, required=True)
    parser.add_argument("--token_list", type=Path, required=True)
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    write_shapes(args.data_dir, args.out_dir, args.bpemodel, args.token_list)
    return 0


if __name__ == "__main__":
    sys.exit(main())
