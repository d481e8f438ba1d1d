"""Stage 6: score a decoding directory in ESPnet's layout; optionally refresh the experiment's RESULTS.md.

    python -m espnet_lrsms.bin.score --data_dir data/test_clean --decode_dir exp/asr/decode_x/test_clean
"""
import argparse
import sys
from pathlib import Path

from espnet_lrsms.scoring.results import write_results
from espnet_lrsms.scoring.sclite import score_dir


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True, help="holds the reference text and utt2spk")
    parser.add_argument("--decode_dir", type=Path, required=True, help="holds 1best_recog/text")
    parser.add_argument("--metrics", nargs="+", default=["wer", "cer"], choices=["wer", "cer"])
    parser.add_argument("--results_md", type=Path, default=None, help="experiment dir whose RESULTS.md to rewrite")
    args = parser.parse_args(cmd)
    hyp = args.decode_dir / "1best_recog" / "text"
    if not hyp.is_file():
        parser.error(f"no hypotheses: {hyp} does not exist (run the decoding stage first)")
    for metric in args.metrics:
        unit = "word" if metric == "wer" else "char"
        total = score_dir(args.data_dir / "text", hyp, args.data_dir / "utt2spk", args.decode_dir / f"score_{metric}", unit)
        err = total.percentages()[4]
        print(f"{args.decode_dir}: {metric.upper()} {err:.1f}% ({total.sentences} utterances, {total.words} {unit}s)")
    if args.results_md is not None:
        print(f"wrote {write_results(args.results_md)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
