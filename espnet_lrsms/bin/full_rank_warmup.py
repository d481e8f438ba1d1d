"""Full-rank warm-up, then low rank, for the recipe's stage 11 (``--warmup_full_rank_epochs E``).

    python -m espnet_lrsms.bin.full_rank_warmup args --config conf/asr/train.yaml --epochs E
        prints, one per line, the training arguments of the dense warm-up (E epochs, lowrank: null,
        the schedule's length kept at the config's max_epoch)
    python -m espnet_lrsms.bin.full_rank_warmup switch --exp_dir exp/asr_x --config conf/asr/train.yaml
        truncates the warm-up's weights to the config's ranks by SVD and writes the checkpoint that
        ESPnet's --resume true continues from (see espnet_lrsms.asr.full_rank_warmup)
"""
import argparse
import logging
import shlex
import sys
from pathlib import Path

from espnet_lrsms.asr.full_rank_warmup import read_yaml, switch_to_lowrank, warmup_args


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    args = commands.add_parser("args", help="print the warm-up's training arguments")
    args.add_argument("--config", type=Path, required=True, help="the low-rank training YAML")
    args.add_argument("--epochs", type=int, required=True, help="full-rank epochs before the switch")
    args.add_argument("--asr_args", default="", help="the recipe's --asr_args: a --max_epoch there is the run's length")
    switch = commands.add_parser("switch", help="truncate the warm-up to low rank in its experiment directory")
    switch.add_argument("--exp_dir", type=Path, required=True)
    switch.add_argument("--config", type=Path, required=True, help="the low-rank training YAML")
    return parser


def main(cmd=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    args = get_parser().parse_args(cmd)
    try:
        if args.command == "args":
            config = read_yaml(args.config)
            overrides = shlex.split(args.asr_args)
            for i, word in enumerate(overrides[:-1]):
                if word in ("--max_epoch", "--max-epoch"):
                    config["max_epoch"] = int(overrides[i + 1])
            print("\n".join(warmup_args(config, args.epochs)))
        else:
            switch_to_lowrank(args.exp_dir, args.config)
    except (ValueError, FileNotFoundError) as error:
        print(f"full_rank_warmup {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
