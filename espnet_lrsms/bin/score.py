"""Stage 13: score a decoding directory in ESPnet's layout; optionally refresh the experiment's RESULTS.md.

    python -m espnet_lrsms.bin.score --data_dir data/test_clean --decode_dir exp/asr/decode_x/test_clean \
        --bpemodel data/en_token_list/bpe_unigram5000/bpe.model

writes <decode_dir>/score_{wer,cer,ter}/{ref.trn,hyp.trn,result.txt} (TER with --bpemodel), as ESPnet's
scoring stage does with sclite.
"""
import argparse
import sys
from pathlib import Path

from espnet_lrsms.scoring.results import write_results
from espnet_lrsms.scoring.sclite import METRIC_UNITS, ScoringText, score_decode_dir


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True, help="holds the reference text and utt2spk")
    parser.add_argument("--decode_dir", type=Path, required=True, help="holds 1best_recog/text")
    parser.add_argument("--metrics", nargs="+", choices=sorted(METRIC_UNITS),
                        help="default: wer cer, and ter when --bpemodel is given")
    parser.add_argument("--bpemodel", type=Path, help="SentencePiece model: token error rate (TER)")
    parser.add_argument("--cleaner", help="ESPnet text cleaner applied to the references (e.g. tacotron)")
    parser.add_argument("--hyp_cleaner", help="ESPnet text cleaner applied to the hypotheses")
    parser.add_argument("--nlsyms_txt", type=Path, help="non-linguistic symbols (one a line) removed before scoring")
    parser.add_argument("--results_md", type=Path, default=None, help="experiment dir whose RESULTS.md to rewrite")
    args = parser.parse_args(cmd)
    try:
        scoring_text = ScoringText.from_files(args.nlsyms_txt, args.cleaner, args.hyp_cleaner, args.bpemodel)
        if "ter" in (args.metrics or ()) and scoring_text.bpemodel is None:
            parser.error("--metrics ter needs --bpemodel")
        totals = score_decode_dir(args.data_dir, args.decode_dir, args.metrics, scoring_text)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    for metric, total in totals.items():
        unit = METRIC_UNITS[metric]
        print(f"{args.decode_dir}: {metric.upper()} {total.percentages()[4]:.1f}% ({total.sentences} utterances, {total.words} {unit}s)")
    if args.results_md is not None:
        print(f"wrote {write_results(args.results_md)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
