"""NPRR and its 1-best counterpart for an LM on an n-best set (definitions: espnet_lrsms.lm.robustness).

    python -m espnet_lrsms.bin.lm_robustness --lm_train_config exp/lm_x/config.yaml --lm_file exp/lm_x/latest.pth \
        --decode_dir exp/asr_y/decode_z/test_clean --text data/test_clean/text \
        --lm_weight 0.5 --substitution_rate 0.3 --seed 0

λ and β: ``--lm_weight``/``--length_bonus``, or ``--rescore_dir`` (a directory stage 17 wrote: its
``lm_weight`` file), or, with neither, λ tuned on this same set (optimistic: say so when reporting it).
"""
import argparse
import json
import logging
import sys
from pathlib import Path

from espnet_lrsms.lm.rescore import lm_scores, parse_grid, tune_weights
from espnet_lrsms.lm.robustness import add_perturbation_arguments, robustness_report
from espnet_lrsms.text.nbest import read_nbest, read_references


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lm_train_config", type=Path, required=True)
    parser.add_argument("--lm_file", type=Path, required=True)
    parser.add_argument("--decode_dir", type=Path, required=True, help="n-best decode dir (<n>best_recog/)")
    parser.add_argument("--text", type=Path, required=True, help="reference text of the decoded set")
    parser.add_argument("--lm_weight", type=float)
    parser.add_argument("--length_bonus", type=float, default=0.0)
    parser.add_argument("--rescore_dir", type=Path, help="take λ and β from <rescore_dir>/lm_weight (stage 17)")
    parser.add_argument("--lm_weights", default="0:1.5:0.05", help="λ grid when tuning on this set")
    add_perturbation_arguments(parser)
    parser.add_argument("--am_components", default="")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s: %(message)s")
    components = [c for c in args.am_components.split(",") if c] or None
    from espnet_lrsms.lm.scorer import LMScorer

    scorer = LMScorer(args.lm_train_config, args.lm_file, device=args.device)
    nbest, refs = read_nbest(args.decode_dir), read_references(args.text)
    lm_weight, length_bonus, origin = args.lm_weight, args.length_bonus, "given"
    if lm_weight is None and args.rescore_dir is not None:
        lm_weight, length_bonus = (float(x) for x in (args.rescore_dir / "lm_weight").read_text().split())
        origin = f"from {args.rescore_dir / 'lm_weight'}"
    if lm_weight is None:
        tuning = tune_weights(nbest, lm_scores(nbest, scorer), refs, parse_grid(args.lm_weights), [length_bonus], components)
        lm_weight, origin = tuning.lm_weight, "tuned on this set"
    print(f"n-best set {args.decode_dir}: {len(refs)} utterances, up to {max(len(h) for h in nbest.values())} hypotheses")
    print(f"LM {args.lm_file} ({args.lm_train_config}); weights {origin}")
    text, payload = robustness_report(nbest, refs, scorer, args, lm_weight, length_bonus, components)
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
