"""Write the config pair that compares ambient-targeted FFN unit dropout with flat dropout.

    python -m espnet_lrsms.bin.analysis_unit_dropout_pair --base conf/asr/train_asr_conformer_lrsms.yaml \\
        (--blocks 3 7 | --layer_reset_csv exp/asr_x/analysis/layer_reset_dev/layer_reset.csv --num_ambient 2) \\
        [--rate 0.5] [--out_dir conf/analysis] [--name NAME]

Writes <out_dir>/<name>_ambient_dropout.yaml (encoder_conf.ffn_unit_dropout on the given blocks at
--rate) and <out_dir>/<name>_flat_dropout.yaml (the same option on all blocks, at the rate that drops
as many parameters per step), and prints both counts. With --layer_reset_csv the blocks are the
--num_ambient most ambient ones of the ablation (least WER rise under its first reset mode).
Everything else is copied from --base.
"""
import argparse
import csv
import sys
from pathlib import Path

import yaml

from espnet_lrsms.analysis.layer_reset import MODES, ambient_blocks
from espnet_lrsms.fileio import write_config_yaml


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="training YAML with encoder: lowrank_conformer")
    chosen = parser.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--blocks", type=int, nargs="+", help="0-based encoder blocks to target")
    chosen.add_argument("--layer_reset_csv", type=Path, help="layer_reset.csv of espnet_lrsms.bin.analysis_layer_reset")
    parser.add_argument("--num_ambient", type=int, default=2, help="with --layer_reset_csv: how many blocks")
    parser.add_argument("--rate", type=float, default=0.5, help="fraction of the targeted FFN units dropped per step")
    parser.add_argument("--out_dir", type=Path, default=Path("conf/analysis"))
    parser.add_argument("--name", default=None, help="file name stem (default: --base's)")
    return parser


def blocks_from_csv(path: Path, count: int) -> list:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    modes = [m for m in MODES if any(r.get("mode") == m and r.get("module") == "(all)" for r in rows)]
    if not modes:
        raise ValueError(f"{path}: no whole-block rows (run layer_reset with --granularity block)")
    ambient = ambient_blocks(rows, modes[0])
    if len(ambient) < count:
        raise ValueError(f"{path}: {len(ambient)} ambient blocks under {modes[0]} ({ambient}), --num_ambient asks for {count}")
    return ambient[:count]


def main(cmd=None) -> int:
    from espnet_lrsms.asr.ffn_unit_dropout import flat_rate_matching
    from espnet_lrsms.tasks.build import build_asr_model

    args = get_parser().parse_args(cmd)
    try:
        base = yaml.safe_load(args.base.read_text())
        if base.get("encoder") != "lowrank_conformer":
            raise ValueError(f"{args.base}: encoder must be lowrank_conformer, got {base.get('encoder')!r}")
        blocks = args.blocks if args.blocks else blocks_from_csv(args.layer_reset_csv, args.num_ambient)
        probe = build_asr_model(args.base, device="meta")
        num_blocks = len(probe.encoder.encoders)
        flat = flat_rate_matching(probe.encoder.encoders, blocks, args.rate) if all(0 <= b < num_blocks for b in blocks) else None
    except (OSError, ValueError) as e:
        raise SystemExit(f"unit_dropout_pair: {e}")
    if flat is None:
        raise SystemExit(f"unit_dropout_pair: --blocks {blocks}: the encoder of {args.base} has blocks 0 … {num_blocks - 1}")
    name = args.name or args.base.stem
    source = f"the {args.num_ambient} most ambient blocks of {args.layer_reset_csv}" if args.layer_reset_csv else "--blocks"
    settings = {"ambient": {"blocks": sorted(blocks), "rate": args.rate}, "flat": {"blocks": "all", "rate": flat}}
    counts = {}
    for kind, option in settings.items():
        config = dict(base, encoder_conf=dict(base.get("encoder_conf") or {}, ffn_unit_dropout=option))
        path = args.out_dir / f"{name}_{kind}_dropout.yaml"
        model = build_asr_model(args.base, device="meta", overrides={"encoder_conf": config["encoder_conf"]})
        plan = model.encoder.ffn_unit_dropout_plan
        counts[kind] = plan
        header = [
            f"{args.base.name} with FFN unit dropout, {kind}: encoder blocks {option['blocks']} at rate {option['rate']}",
            f"({'blocks from ' + source if kind == 'ambient' else 'all blocks, the rate that drops as many parameters as the ambient setting'}).",
            f"Drops {plan.dropped_parameters:,} parameters per training step ({100 * plan.dropped_fraction:.2f} % of the encoder's).",
            f"Written by: python -m espnet_lrsms.bin.analysis_unit_dropout_pair {' '.join(cmd if cmd is not None else sys.argv[1:])}",
        ]
        write_config_yaml(path, config, header)
        print(f"{kind:<8} blocks {option['blocks']!s:<14} rate {option['rate']:<7g} drops {plan.dropped_parameters:>11,} "
              f"parameters per step ({100 * plan.dropped_fraction:.2f} % of the encoder's) -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
