"""Stage 10/11 helper for ``normalize: global_mvn`` (espnet_lrsms.recipe.feats_stats).

    python -m espnet_lrsms.bin.feats_stats plan --config conf/my_fbank.yaml --asr_args="--max_epoch 3" \
        [--feats_normalize global_mvn]
        # prints "<normalize> <recipe|given|->": "global_mvn recipe" when stages 10-11 make and pass the stats
    python -m espnet_lrsms.bin.feats_stats split --train data/train/wav.scp --valid data/dev/wav.scp \\
        --nj 4 --logdir exp/asr_stats/logdir          # prints the number of jobs; {train,valid}/keys.<j>.scp
    python -m espnet_lrsms.bin.feats_stats aggregate --logdir exp/asr_stats/logdir --nj 4 --stats_dir exp/asr_stats
        # the jobs' <logdir>/stats.<j> summed -> exp/asr_stats/{train,valid}/feats_stats.npz
"""
import argparse
import logging
import sys
from pathlib import Path

from espnet_lrsms.recipe.feats_stats import FeatsStatsError, aggregate_feats_stats, normalize_plan, split_stats_keys


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["plan", "split", "aggregate"])
    parser.add_argument("--config", type=Path, help="plan: the training config")
    parser.add_argument("--asr_args", default="", help="plan: the recipe's --asr_args")
    parser.add_argument("--feats_normalize", default="",
                        help="plan: the recipe's --feats_normalize (global_mvn, utterance_mvn, none; empty: the config's)")
    parser.add_argument("--train", type=Path, help="split: the training set's wav.scp")
    parser.add_argument("--valid", type=Path, help="split: the validation set's wav.scp")
    parser.add_argument("--nj", type=int, help="split: at most this many jobs; aggregate: the jobs to sum")
    parser.add_argument("--logdir", type=Path, help="split, aggregate: the jobs' directory")
    parser.add_argument("--stats_dir", type=Path, help="aggregate: <asr_stats_dir>")
    args = parser.parse_args(cmd)
    needed = {
        "plan": ["config"], "split": ["train", "valid", "nj", "logdir"], "aggregate": ["logdir", "nj", "stats_dir"],
    }
    missing = [f"--{name}" for name in needed[args.action] if getattr(args, name) is None]
    if missing:
        parser.error(f"{args.action} needs {' '.join(missing)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    try:
        if args.action == "plan":
            print(normalize_plan(args.config, args.asr_args, args.feats_normalize).words())
        elif args.action == "split":
            print(split_stats_keys(args.train, args.valid, args.nj, args.logdir))
        else:
            aggregate_feats_stats(args.logdir, args.nj, args.stats_dir)
    except FeatsStatsError as error:
        print(f"feats_stats {args.action}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
