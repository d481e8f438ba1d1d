"""Numerical signatures of an ESPnet experiment: how far each block's weights moved from their init.

    python -m espnet_lrsms.bin.analysis_numerical_signatures --exp_dir exp/asr_x [--checkpoint valid.acc.best.pth]

For module m (a weight matrix in a block, e.g. self_attn.linear_q) in block l of a sub-model:

    signature = ||W(t) - W(0)||_F / max over blocks l' of ||W^{m,l'}(t) - W^{m,l'}(0)||_F

in [0, 1], 1.0 in the block where that module moved most (Zhou, Guliani et al., "Exploring
heterogeneous characteristics of layers in ASR models for more efficient training", ICASSP 2022).
Factorized layers count as U @ V^T. W(0) is <exp_dir>/0epoch.pth, which espnet_lrsms.bin.asr_train
saves before the first update; W(t) is --checkpoint (a path, or a name inside --exp_dir; default the
last <N>epoch.pth).

Writes to --output_dir (default <exp_dir>/analysis):
  signatures_<checkpoint>.csv  submodel, module, module_type, block, num_blocks, change (||dW||_F),
                               relative_change (||dW||_F / ||W(0)||_F), signature
  signatures_<checkpoint>.png  heat map, modules x blocks, a panel per sub-model
"""
import argparse
import logging
import sys
from pathlib import Path

from espnet_lrsms.analysis.numerical_signatures import numerical_signatures, plot_heatmap, write_csv
from espnet_lrsms.analysis.weights import epoch_of


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, required=True, help="ESPnet experiment directory (holds 0epoch.pth)")
    parser.add_argument("--checkpoint", default=None, help="trained model: path or name in --exp_dir (default: last <N>epoch.pth)")
    parser.add_argument("--initial", type=Path, default=None, help="initial state dict (default: <exp_dir>/0epoch.pth)")
    parser.add_argument("--output_dir", type=Path, default=None, help="where to write CSV and PNG (default: <exp_dir>/analysis)")
    return parser


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        rows, checkpoint, initial = numerical_signatures(args.exp_dir, args.checkpoint, args.initial)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"numerical_signatures: {e}")
    if not rows:
        raise SystemExit(f"{checkpoint}: no weights inside encoder/decoder blocks")
    out = args.output_dir or args.exp_dir / "analysis"
    stem = checkpoint.name[: -len(".pth")] if checkpoint.name.endswith(".pth") else checkpoint.name
    epoch = epoch_of(checkpoint)
    csv_path = write_csv(rows, out / f"signatures_{stem}.csv")
    def short(path: Path) -> str:
        return path.name if path.parent.resolve() == args.exp_dir.resolve() else str(path)

    title = (f"{args.exp_dir.resolve().name}: W(t) = {short(checkpoint)}" + (f" (epoch {epoch})" if epoch is not None else "")
             + f", W(0) = {short(initial)}")
    png_path = plot_heatmap(rows, out / f"signatures_{stem}.png", title=title)
    print(f"numerical signatures of {checkpoint} against {initial}")
    for submodel in dict.fromkeys(r["submodel"] for r in rows):
        mine = [r for r in rows if r["submodel"] == submodel]
        num_blocks = mine[0]["num_blocks"]
        print(f"  {submodel} ({num_blocks} blocks): module, signature per block, block that moved least")
        for module in dict.fromkeys(r["module"] for r in mine):
            ordered = sorted((r for r in mine if r["module"] == module), key=lambda r: r["block"])
            values = [r["signature"] for r in ordered]
            least = min(ordered, key=lambda r: r["signature"])["block"]
            print(f"    {module:<40} " + " ".join(f"{v:.2f}" for v in values) + f"   least: {least}")
    print(f"wrote {csv_path}, {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
