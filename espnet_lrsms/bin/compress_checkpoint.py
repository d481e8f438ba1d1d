"""Compress a trained ESPnet ASR model to a rank schedule by truncated SVD.

    python -m espnet_lrsms.bin.compress_checkpoint \\
        --asr_train_config exp/asr_full_rank/config.yaml \\
        --asr_model_file exp/asr_full_rank/valid.acc.ave.pth \\
        --lowrank_from conf/asr/train_asr_conformer_lrsms.yaml \\
        --output_dir exp/asr_full_rank_svd_lrsms

Takes ``encoder_conf.lowrank`` and ``decoder_conf.lowrank`` from ``--lowrank_from`` (any training
config), writes ``config.yaml``, ``model.pth`` and ``compression.csv`` (rank, weights, relative
Frobenius error per layer) to ``--output_dir``, which must not be the source experiment's directory nor
hold a ``config.yaml`` or ``model.pth`` already (no experiment is overwritten). Decode the result with
``python -m espnet_lrsms.bin.asr_inference --asr_train_config <out>/config.yaml --asr_model_file <out>/model.pth``.
A factorized checkpoint can be re-ranked the same way (its U·Vᵀ is truncated).
"""
import argparse
import csv
import io
import logging
import sys
from pathlib import Path

import yaml

from espnet_lrsms.fileio import write_text_atomic
from espnet_lrsms.asr.compress_checkpoint import compress_checkpoint


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asr_train_config", type=Path, required=True)
    parser.add_argument("--asr_model_file", type=Path, required=True)
    parser.add_argument("--lowrank_from", type=Path, required=True, help="config whose *_conf.lowrank blocks to apply")
    parser.add_argument("--output_dir", type=Path, required=True)
    return parser


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    with open(args.lowrank_from, encoding="utf-8") as f:
        source = yaml.safe_load(f)
    schedules = {
        part: (source.get(f"{part}_conf") or {}).get("lowrank")
        for part in ("encoder", "decoder")
        if (source.get(f"{part}_conf") or {}).get("lowrank") is not None
    }
    if not schedules:
        raise SystemExit(f"{args.lowrank_from}: neither encoder_conf.lowrank nor decoder_conf.lowrank is set")
    try:
        report = compress_checkpoint(
            args.asr_train_config, args.asr_model_file, schedules, args.output_dir, schedules_from=args.lowrank_from
        )
    except ValueError as e:
        raise SystemExit(f"compress_checkpoint: {e}")
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=list(report[0]))
    writer.writeheader()
    writer.writerows(report)
    write_text_atomic(args.output_dir / "compression.csv", table.getvalue())
    before = sum(r["weights_before"] for r in report)
    after = sum(r["weights_after"] for r in report)
    worst = max(report, key=lambda r: r["relative_error"])
    print(
        f"{len(report)} layers: {before / 1e6:.2f} M -> {after / 1e6:.2f} M weights; "
        f"largest relative error {worst['relative_error']:.3f} ({worst['layer']}); "
        f"wrote {args.output_dir}/config.yaml, model.pth, compression.csv"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
