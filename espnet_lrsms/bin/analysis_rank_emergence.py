"""Rank emergence of the weight matrices of ESPnet checkpoints (LR-SMS Fig. 1 and Fig. 3).

    python -m espnet_lrsms.bin.analysis_rank_emergence exp/asr_full_rank [--threshold 0.95] [--measure energy]
    python -m espnet_lrsms.bin.analysis_rank_emergence exp/x/valid.acc.best.pth other.pth --output_dir out/

For every weight matrix W (m x n) of each checkpoint, the rank fraction is k / min(m, n), where k is
the smallest number of leading singular values holding the fraction --threshold of the matrix:
  energy  (default): sum_{i<=k} s_i^2 >= threshold * sum_i s_i^2
  nuclear          : sum_{i<=k} s_i   >= threshold * sum_i s_i
Singular values below the numerical-rank tolerance max(m, n) * eps * s_1 count as zero. Factorized
layers are analysed as U @ V^T (fraction relative to min(m, n) of the product); convolution kernels
(out, in, k) as (out, in * k) matrices.

An experiment directory stands for its <N>epoch.pth files (0epoch.pth is the initial model; ESPnet
deletes epoch files outside the n best unless trained with --keep_nbest_models >= max_epoch).

Writes to --output_dir (default: <first input dir>/analysis or <checkpoint dir>/analysis):
  rank_emergence.csv   one row per matrix per checkpoint (checkpoint, epoch, key, submodel, block,
                       num_blocks, module_type, shape, rank_fraction, rank, min_dim, factor_rank, ...)
  rank_over_epochs.png Fig. 1 style, mean fraction per module type over epochs (two or more epochs)
  rank_over_depth.png  Fig. 3 style, mean fraction per module type over depth b/B (last checkpoint)
"""
import argparse
import logging
import sys
from collections import defaultdict
from pathlib import Path

from espnet_lrsms.analysis.rank_emergence import (
    MEASURES,
    analyse_checkpoints,
    describe_measure,
    plot_over_depth,
    plot_over_epochs,
    resolve_inputs,
    write_csv,
)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="ESPnet experiment directories and/or *.pth checkpoints")
    parser.add_argument("--output_dir", type=Path, default=None, help="where to write the CSV and PNGs")
    parser.add_argument("--threshold", type=float, default=0.95, help="fraction of the matrix to hold, in (0, 1]")
    parser.add_argument("--measure", choices=MEASURES, default="energy", help="energy: sum of s^2; nuclear: sum of s; stable: the stable rank sum(s^2)/s_1^2, rounded up (no threshold)")
    parser.add_argument("--device", default="cpu", help="device for the SVDs (e.g. cuda)")
    return parser


def default_output_dir(first: Path) -> Path:
    return (first if first.is_dir() else first.parent) / "analysis"


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if not 0 < args.threshold <= 1:
        raise SystemExit(f"--threshold must be in (0, 1], got {args.threshold}")
    try:
        paths = resolve_inputs(args.inputs)
    except FileNotFoundError as e:
        raise SystemExit(str(e))
    out = args.output_dir or default_output_dir(Path(args.inputs[0]))
    try:
        rows = analyse_checkpoints(paths, args.threshold, args.measure, device=args.device)
    except ValueError as e:  # not a checkpoint, NaN weights: the message names the file and key
        raise SystemExit(str(e))
    written = [write_csv(rows, out / "rank_emergence.csv")]
    epochs_png = plot_over_epochs(rows, out / "rank_over_epochs.png")
    if epochs_png:
        written.append(epochs_png)
    last = str(paths[-1])
    last_rows = [r for r in rows if r["checkpoint"] == last]
    epoch = last_rows[0]["epoch"] if last_rows else ""
    depth_png = plot_over_depth(
        last_rows, out / "rank_over_depth.png", title=f"{last}" + (f" (epoch {epoch})" if epoch != "" else "")
    )
    if depth_png:
        written.append(depth_png)

    # summary: mean fraction per sub-model and module type, first and last checkpoint
    shown = [str(paths[0])] + ([last] if last != str(paths[0]) else [])
    print(f"rank fraction: {describe_measure(args.threshold, args.measure)} / min(m, n); mean over matrices")
    for ckpt in shown:
        grouped = defaultdict(list)
        for r in rows:
            if r["checkpoint"] == ckpt:
                grouped[(r["submodel"], r["module_type"])].append(r["rank_fraction"])
        epoch = next((r["epoch"] for r in rows if r["checkpoint"] == ckpt), "")
        print(f"  {ckpt}" + (f" (epoch {epoch})" if epoch != "" else ""))
        for (submodel, mtype), values in sorted(grouped.items()):
            print(f"    {submodel:<9} {mtype:<6} {len(values):>4} matrices  mean {sum(values) / len(values):.3f}  "
                  f"min {min(values):.3f}  max {max(values):.3f}")
    print(f"{len(paths)} checkpoint(s), {len(rows)} matrices; wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
