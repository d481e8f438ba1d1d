"""Fit LR-SMS rank schedules (lowrank: blocks) to the spectra of a trained model, to a parameter budget.

    python -m espnet_lrsms.bin.analysis_fit_rank_schedule --config exp/asr_full_rank/config.yaml \\
        --checkpoint exp/asr_full_rank/valid.acc.ave.pth --budget_m 115 [--per_block] \\
        [--threshold 0.95] [--measure energy] [--output_config conf/asr/train_fitted.yaml]

1. For every MHSA and FFN linear matrix of the encoder and decoder blocks (the ones lowrank_conformer
   and lowrank_transformer factorize; factorized layers as U @ V^T), the rank fraction: the number of
   leading singular values holding --threshold of the matrix (energy: sum s^2; nuclear: sum s),
   over min(m, n). Averaged per block: f_0 ... f_{B-1} per sub-model and module type.
2. Least squares of f_b ~ a_b = a_i + b (a_f - a_i) / B, b = 0 ... B-1 (espnet_lrsms.lowrank.schedule's
   convention); B = 1 gives a uniform a. --per_block keeps the measured f_b as {per_block: [...]}.
3. All a times one common multiplier (1 without --budget_m; with it, the largest multiplier whose model,
   built from --config with these lowrank: blocks on the meta device, has at most --budget_m million
   parameters, found by bisection), rounded to 4 decimals and clipped to [0.0001, 1].

Prints ready-to-paste encoder_conf/decoder_conf lowrank: blocks and the resulting parameter count, and
writes to --output_dir (default: <checkpoint's directory>/analysis):
  schedule_fit.csv  submodel, module_type, block, num_blocks, measured_fraction, fitted_alpha, scheduled_alpha
  schedule_fit.png  per sub-model: measured fractions, fitted line and the schedule over b/B
The vocabulary size comes from the checkpoint's output layer (else the config's token_list, else
--vocab_size).
"""
import argparse
import logging
import sys
from pathlib import Path

import yaml

from espnet_lrsms.analysis.rank_emergence import MEASURES
from espnet_lrsms.analysis.fit_rank_schedule import (
    CSV_FIELDS,
    config_with_schedules,
    fit_header,
    fit_rank_schedule,
    fit_rows,
    format_yaml,
    plot_fit,
)
from espnet_lrsms.analysis.weights import write_rows_csv
from espnet_lrsms.fileio import write_config_yaml


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="the model's training YAML (exp/x/config.yaml or conf/...)")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the trained (or partly trained) model, *.pth")
    parser.add_argument("--budget_m", type=float, default=None, help="parameter budget in millions (default: no scaling)")
    parser.add_argument("--per_block", action="store_true", help="an explicit alpha per block instead of a linear [a_i, a_f]")
    parser.add_argument("--threshold", type=float, default=0.95, help="fraction of the matrix to hold, in (0, 1]")
    parser.add_argument("--measure", choices=MEASURES, default="energy", help="energy: sum of s^2; nuclear: sum of s; stable: the stable rank sum(s^2)/s_1^2, rounded up (no threshold)")
    parser.add_argument("--vocab_size", type=int, default=5000, help="used only if neither checkpoint nor config tell")
    parser.add_argument("--output_config", type=Path, default=None, help="also write the full training config with the schedule")
    parser.add_argument("--output_dir", type=Path, default=None, help="CSV and PNG (default: <checkpoint dir>/analysis)")
    return parser


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for path in (args.config, args.checkpoint):
        if not path.is_file():
            raise SystemExit(f"no such file: {path}")
    if not 0 < args.threshold <= 1:
        raise SystemExit(f"--threshold must be in (0, 1], got {args.threshold}")
    if args.budget_m is not None and args.budget_m <= 0:
        raise SystemExit(f"--budget_m must be positive, got {args.budget_m}")
    with open(args.config, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    try:
        result = fit_rank_schedule(
            config, args.checkpoint, args.budget_m, args.threshold, args.measure, args.per_block, args.vocab_size
        )
    except ValueError as e:
        raise SystemExit(f"fit_rank_schedule: {e}")
    print(format_yaml(result, source=str(args.checkpoint)), end="")
    if args.output_config is not None:
        full = config_with_schedules(config, result.schedules)
        command = " ".join(cmd if cmd is not None else sys.argv[1:])
        header = [f"{args.config} with a fitted rank schedule (the lowrank: blocks of encoder_conf, decoder_conf).",
                  *fit_header(result, str(args.checkpoint)),
                  f"Written by: python -m espnet_lrsms.bin.analysis_fit_rank_schedule {command}"]
        write_config_yaml(args.output_config, full, header)
        print(f"# wrote {args.output_config}")
    out = args.output_dir or args.checkpoint.parent / "analysis"
    csv_path = write_rows_csv(fit_rows(result), CSV_FIELDS, out / "schedule_fit.csv")
    title = (f"rank schedule fitted to {args.checkpoint} ({args.measure}, τ = {args.threshold:g})"
             + (f", budget {args.budget_m:g} M" if args.budget_m else ""))
    png_path = plot_fit(result, out / "schedule_fit.png", title)
    print(f"# wrote {csv_path}, {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
