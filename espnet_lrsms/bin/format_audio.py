"""Stage 3 (ESPnet's --feats_type raw): data/<set> -> dump/raw/<set> with real audio files at --fs.

    python -m espnet_lrsms.bin.format_audio --pair data/train dump/raw/org/train --pair data/test dump/raw/test \\
        --fs 16k --audio_format flac --nj 8 [--on_error skip]

Reads every wav.scp entry as Kaldi does (a command ending in "|", an ark with an offset, a plain file), cuts
data/<set>/segments when there is one, resamples to --fs and writes <out>/{wav.scp,utt2num_samples,text,
utt2spk,spk2utt,...} and <out>/data/<utt>.<audio_format>; plain mono files already at --fs are referenced,
not copied. A multichannel, NaN or unreadable entry is named with its file and line: --on_error stop (default)
fails, skip leaves it out (<out>/skipped.txt). See espnet_lrsms.recipe.format_audio.
"""
import argparse
import logging
import sys
from pathlib import Path

from espnet_lrsms.recipe.data_prep import DataPrepError
from espnet_lrsms.recipe.format_audio import AUDIO_FORMATS, format_sets


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", type=Path, nargs=2, action="append", required=True, metavar=("DATA", "OUT"),
                        help="format the data directory DATA into OUT (repeat for each set)")
    parser.add_argument("--fs", default="16k", help="sampling rate of the written audio: 16k or 16000 (ESPnet's --fs)")
    parser.add_argument("--audio_format", default="flac", choices=AUDIO_FORMATS, help="format of the written files")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes")
    parser.add_argument("--on_error", default="stop", choices=("stop", "skip"),
                        help="a faulty entry: stop naming it, or skip it (listed in <out>/skipped.txt)")
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    if args.nj < 1:
        parser.error(f"--nj must be at least 1, got {args.nj}")
    try:
        format_sets([tuple(pair) for pair in args.pair], args.fs, args.audio_format, args.nj, args.on_error)
    except DataPrepError as error:
        logging.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
