"""Write the three configs that compare ambient-targeted, critical-targeted and flat unit dropout.

    python -m espnet_lrsms.bin.analysis_unit_dropout_configs --base conf/asr/train_asr_conformer_lrsms.yaml \\
        (--ambient_blocks 3 4 --critical_blocks 0 11 | --layer_reset_csv exp/asr_x/analysis/layer_reset_dev/layer_reset.csv \\
        [--num_blocks 2]) [--rate 0.5] [--modules mhsa ffn conv] [--conv_norm group_norm] [--out_dir conf/analysis] [--name NAME]

Writes <out_dir>/<name>_{ambient,critical,flat}_dropout.yaml: encoder_conf.unit_dropout on the ambient
and on the critical blocks at --rate, and on all blocks at the rate that drops as many parameters per
step as the ambient setting; conv_norm set in all three. With --layer_reset_csv the blocks are the
--num_blocks most ambient and most critical ones of the ablation (its first reset mode). Everything
else is copied from --base. Prints what each drops.
"""
import argparse
import sys
from pathlib import Path

from espnet_lrsms.analysis.unit_dropout_configs import blocks_from_csv, write_unit_dropout_configs


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="training YAML with encoder: lowrank_conformer")
    parser.add_argument("--ambient_blocks", type=int, nargs="+", help="0-based ambient encoder blocks")
    parser.add_argument("--critical_blocks", type=int, nargs="+", help="0-based critical encoder blocks")
    parser.add_argument("--layer_reset_csv", type=Path, help="layer_reset.csv of espnet_lrsms.bin.analysis_layer_reset")
    parser.add_argument("--num_blocks", type=int, default=2, help="with --layer_reset_csv: how many blocks of each")
    parser.add_argument("--rate", type=float, default=0.5, help="fraction of the targeted blocks' units dropped per step")
    parser.add_argument("--modules", nargs="+", default=["mhsa", "ffn", "conv"], help="unit_dropout.modules")
    parser.add_argument("--conv_norm", choices=("group_norm", "batch_norm"), default="group_norm")
    parser.add_argument("--out_dir", type=Path, default=Path("conf/analysis"))
    parser.add_argument("--name", default=None, help="file name stem (default: --base's)")
    return parser


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    given = args.ambient_blocks is not None and args.critical_blocks is not None
    if given == (args.layer_reset_csv is not None) or (args.ambient_blocks is None) != (args.critical_blocks is None):
        raise SystemExit("unit_dropout_configs: give --ambient_blocks and --critical_blocks, or --layer_reset_csv")
    try:
        if given:
            ambient, critical, source = args.ambient_blocks, args.critical_blocks, "given on the command line"
        else:
            ambient, critical, mode = blocks_from_csv(args.layer_reset_csv, args.num_blocks)
            source = f"of {args.layer_reset_csv} (the {args.num_blocks} most under {mode})"
        written = write_unit_dropout_configs(
            args.base, ambient, critical, args.rate, args.modules, args.conv_norm, args.out_dir,
            args.name or args.base.stem, source, " ".join(cmd if cmd is not None else sys.argv[1:]),
        )
    except (OSError, ValueError) as e:
        raise SystemExit(f"unit_dropout_configs: {e}")
    for w in written:
        print(f"{w.kind:<8} blocks {w.option['blocks']!s:<14} rate {w.option['rate']:<7g} drops {w.plan.dropped_parameters:>11,} "
              f"parameters per step ({100 * w.plan.dropped_fraction:.2f} % of the encoder's) -> {w.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
