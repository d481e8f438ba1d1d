"""Recipe stage 17: rescore n-best lists with an LM, the weights tuned on a dev set; score; NPRR.

    python -m espnet_lrsms.bin.lm_rescore --lm_train_config exp/lm_x/config.yaml --lm_file exp/lm_x/latest.pth \
        --tune_decode_dir exp/asr_y/decode_z/dev_clean --tune_text data/dev_clean/text \
        --decode_dir exp/asr_y/decode_z/dev_clean --decode_dir exp/asr_y/decode_z/test_clean \
        --output_root exp/asr_y/decode_z_rescore_lm_x [--data_root data --results_md exp/asr_y --robustness true]

score = AM + λ·log P_LM + β·words (espnet_lrsms.lm.rescore); (λ, β) minimise the WER of the tuning
set over the grids, or are given. Each ``--decode_dir D`` gives ``<output_root>/<name of D>/`` with
``1best_recog/{text,score,rescore}`` and ``rescore.json``. With ``--data_root``, each is scored as in
stage 13 against ``<data_root>/<name of D>/text`` (``score_{wer,cer}/``), and ``--results_md`` rewrites
that experiment's RESULTS.md; with ``--robustness true``, every set but the tuning set also gets
``robustness.{txt,json}`` (NPRR and 1-best PRR, see espnet_lrsms.bin.lm_robustness).
"""
import argparse
import json
import logging
import sys
from pathlib import Path

from espnet2.utils.types import str2bool

from espnet_lrsms.fileio import write_text_atomic
from espnet_lrsms.lm.rescore import chosen_words, corpus_wer, lm_scores, parse_grid, rescore, tune_weights, write_rescored
from espnet_lrsms.lm.robustness import add_perturbation_arguments, robustness_report
from espnet_lrsms.text.nbest import read_nbest, read_references


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lm_train_config", type=Path, required=True, help="config.yaml of the LM (base or LoRA)")
    parser.add_argument("--lm_file", type=Path, required=True, help="its weights, e.g. latest.pth")
    parser.add_argument("--decode_dir", type=Path, action="append", required=True, help="an n-best decode dir (repeatable)")
    parser.add_argument("--output_root", type=Path, required=True)
    parser.add_argument("--tune_decode_dir", type=Path, help="decode dir whose WER picks the weights")
    parser.add_argument("--tune_text", type=Path, help="reference text of --tune_decode_dir")
    parser.add_argument("--lm_weight", type=float, help="use this λ instead of tuning it")
    parser.add_argument("--length_bonus", type=float, default=None, help="use this β instead of tuning it")
    parser.add_argument("--lm_weights", default="0:1.5:0.05", help="λ grid, start:stop:step or a,b,c")
    parser.add_argument("--length_bonuses", default="0", help="β grid (per word)")
    parser.add_argument(
        "--am_components", default="", help="comma-separated scorers of score_components to use as AM score (default: the total score)"
    )
    parser.add_argument("--data_root", type=Path, help="score each output against <data_root>/<set>/{text,utt2spk}")
    parser.add_argument("--results_md", type=Path, help="experiment dir whose RESULTS.md to rewrite after scoring")
    parser.add_argument("--robustness", type=str2bool, default=False, help="NPRR on every set but the tuning set")
    add_perturbation_arguments(parser)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch_size", type=int, default=64)
    return parser


def main(cmd=None) -> int:
    parser = get_parser()
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    components = [c for c in args.am_components.split(",") if c] or None
    if args.lm_weight is None and (args.tune_decode_dir is None or args.tune_text is None):
        parser.error("give --lm_weight, or --tune_decode_dir and --tune_text to tune it")
    names = [d.name for d in args.decode_dir]
    if len(set(names)) != len(names):
        parser.error(f"--decode_dir: two decode dirs share a name ({names}); outputs are named after them")
    from espnet_lrsms.lm.scorer import LMScorer

    scorer = LMScorer(args.lm_train_config, args.lm_file, device=args.device, batch_size=args.batch_size)
    info = {"lm_train_config": str(args.lm_train_config), "lm_file": str(args.lm_file)}
    args.output_root.mkdir(parents=True, exist_ok=True)
    if args.lm_weight is None:
        nbest = read_nbest(args.tune_decode_dir)
        refs = read_references(args.tune_text)
        lm = lm_scores(nbest, scorer)
        bonuses = [args.length_bonus] if args.length_bonus is not None else parse_grid(args.length_bonuses)
        tuning = tune_weights(nbest, lm, refs, parse_grid(args.lm_weights), bonuses, components)
        before = corpus_wer(refs, chosen_words(nbest, rescore(nbest, lm, 0.0, 0.0, components)))
        lm_weight, length_bonus = tuning.lm_weight, tuning.length_bonus
        print(
            f"{args.tune_decode_dir}: WER {before:.2f} % before rescoring, {tuning.wer:.2f} % after "
            f"(λ = {lm_weight:g}, β = {length_bonus:g}, chosen from {len(tuning.table)} grid points)"
        )
        table = args.output_root / "lm_weight_tuning.tsv"
        table.write_text("lm_weight\tlength_bonus\twer\n" + "".join(f"{w:g}\t{b:g}\t{e:.4f}\n" for w, b, e in tuning.table))
        info.update(tuned_on=str(args.tune_decode_dir), tune_wer_before=before, tune_wer_after=tuning.wer)
    else:
        lm_weight, length_bonus = args.lm_weight, args.length_bonus or 0.0
        info.update(tuned_on=None)
    (args.output_root / "lm_weight").write_text(f"{lm_weight:g} {length_bonus:g}\n")
    for decode_dir in args.decode_dir:
        nbest = read_nbest(decode_dir)
        out = write_rescored(
            args.output_root / decode_dir.name, nbest, lm_scores(nbest, scorer), lm_weight, length_bonus, components, info
        )
        print(f"rescored {decode_dir} -> {out}")
        if args.data_root is not None:
            score(args.data_root / decode_dir.name, out)
        tuned_here = args.tune_decode_dir is not None and decode_dir.resolve() == args.tune_decode_dir.resolve()
        if args.robustness and not tuned_here:
            if args.data_root is None:
                parser.error("--robustness true needs --data_root (the references)")
            refs = read_references(args.data_root / decode_dir.name / "text")
            text, payload = robustness_report(nbest, refs, scorer, args, lm_weight, length_bonus, components)
            for name, content in (("robustness.txt", text + "\n"), ("robustness.json", json.dumps(payload, indent=1) + "\n")):
                write_text_atomic(out / name, content)
            print(f"{decode_dir.name}: {text.splitlines()[-1]}")
    if args.results_md is not None:
        from espnet_lrsms.scoring.results import write_results

        print(f"wrote {write_results(args.results_md)}")
    print(json.dumps({"lm_weight": lm_weight, "length_bonus": length_bonus}))
    return 0


def score(data_dir: Path, decode_dir: Path) -> None:
    """Stage 13's scoring of one decode dir (espnet_lrsms.bin.score): WER and CER."""
    from espnet_lrsms.scoring.sclite import score_decode_dir

    for metric, total in score_decode_dir(data_dir, decode_dir).items():
        print(f"{decode_dir}: {metric.upper()} {total.percentages()[4]:.1f}% ({total.sentences} utterances)")


if __name__ == "__main__":
    sys.exit(main())
