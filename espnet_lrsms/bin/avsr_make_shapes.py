"""AVSR stage 3: shape files for ESPnet's batch samplers, for several data directories in one process.

    python -m espnet_lrsms.bin.avsr_make_shapes --bpemodel data/en_token_list/bpe_unigram5000/bpe.model \\
        --token_list data/en_token_list/bpe_unigram5000/tokens.txt \\
        --pair data/train exp/avsr_stats/train --pair data/val exp/avsr_stats/valid

Per pair: ``speech_shape`` and ``text_shape.bpe`` as the ASR recipe's (espnet_lrsms.recipe.shapes), and
``video_shape`` (``<utt> <frames>,<height>,<width>``; from stage 1's ``utt2num_video_frames``) for a
sampler over video lengths (``--train_shape_file .../video_shape``; the recipe batches by speech length).
"""
import argparse
import logging
import sys
from pathlib import Path

from espnet_lrsms.fileio import split_kaldi_line, write_text_atomic
from espnet_lrsms.recipe.shapes import write_shapes


def write_video_shape(data_dir: Path, out_dir: Path, size: int) -> Path:
    """``out_dir/video_shape`` from ``data_dir/utt2num_video_frames`` (written to a temporary name first)."""
    source = data_dir / "utt2num_video_frames"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file (made by stage 1, espnet_lrsms.bin.avsr_prepare_data)")
    lines = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        key, frames = split_kaldi_line(line)
        if not frames.strip().isdigit():
            raise ValueError(f"{source}:{number}: expected '<utt> <frames>', got {line!r}")
        lines.append(f"{key} {frames.strip()},{size},{size}\n")
    return write_text_atomic(out_dir / "video_shape", "".join(lines))


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", nargs=2, action="append", type=Path, required=True, metavar=("DATA_DIR", "OUT_DIR"))
    parser.add_argument("--bpemodel", type=Path, required=True)
    parser.add_argument("--token_list", type=Path, required=True)
    parser.add_argument("--roi_size", type=int, default=96)
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    for data_dir, out_dir in args.pair:
        if not (data_dir / "wav.scp").is_file():
            logging.error("%s: no such file (run stage 1)", data_dir / "wav.scp")
            return 1
        write_shapes(data_dir, out_dir, args.bpemodel, args.token_list)
        write_video_shape(data_dir, out_dir, args.roi_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
