"""Stage 10 (ASR and AVSR): shape files for ESPnet's batch samplers, for several data directories in one process.

    python -m espnet_lrsms.bin.make_shapes --bpemodel data/en_token_list/bpe_unigram5000/bpe.model \\
        --token_list data/en_token_list/bpe_unigram5000/tokens.txt \\
        --pair data/train exp/asr_stats/train --pair data/dev exp/asr_stats/valid

Per pair: ``speech_shape`` and ``text_shape.<token_type>`` (espnet_lrsms.recipe.shapes; the tokens of
``--token_type`` bpe (with ``--bpemodel``), char or word, after ``--cleaner``, ``--non_linguistic_symbols``
whole, as ESPnet's preprocessor makes them in training), and for an audio-visual
data directory (one with stage 1's ``utt2num_video_frames``) also ``video_shape``
(``<utt> <frames>,<roi_size>,<roi_size>``).
"""
import argparse
import logging
import sys
from pathlib import Path

from espnet2.utils.types import str_or_none

from espnet_lrsms.text.tokens import TOKEN_TYPES
from espnet_lrsms.recipe.shapes import write_shapes, write_video_shape


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", nargs=2, action="append", type=Path, required=True, metavar=("DATA_DIR", "OUT_DIR"))
    parser.add_argument("--token_type", choices=TOKEN_TYPES, default="bpe")
    parser.add_argument("--bpemodel", type=str_or_none, help="SentencePiece model: needed for --token_type bpe")
    parser.add_argument("--token_list", type=Path, required=True)
    parser.add_argument("--non_linguistic_symbols", type=str_or_none, help="ESPnet's: a file, one symbol a line")
    parser.add_argument("--cleaner", type=str_or_none, help="ESPnet's text cleaner, e.g. tacotron")
    parser.add_argument("--roi_size", type=int, default=96, help="AVSR: height and width of the mouth crops")
    args = parser.parse_args(cmd)
    if args.token_type == "bpe" and args.bpemodel is None:
        parser.error("--token_type bpe needs --bpemodel")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    for data_dir, out_dir in args.pair:
        if not (data_dir / "wav.scp").is_file():
            logging.error("%s: no such file (run stage 1)", data_dir / "wav.scp")
            return 1
        try:
            write_shapes(data_dir, out_dir, args.bpemodel, args.token_list, args.token_type,
                         args.non_linguistic_symbols, args.cleaner)
        except (FileNotFoundError, ValueError) as e:
            logging.error("%s", e)
            return 1
        if (data_dir / "utt2num_video_frames").is_file():
            write_video_shape(data_dir, out_dir, args.roi_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
