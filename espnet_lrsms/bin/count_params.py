"""Print the parameter count of ASR or AVSR training configs, built through their ESPnet task.

    python -m espnet_lrsms.bin.count_params conf/asr/*.yaml conf/avsr/*.yaml [--vocab_size 5000] [--layers]

A config with a ``video_frontend`` is built by ``AVSRTask``, any other by ``LowRankASRTask``. Models
are built on PyTorch's meta device, so nothing is allocated or initialised and even the 268 M model
counts in seconds. Where a ``paper_rows.tsv`` beside a config names the paper's figure, it is printed
with the relative difference.
"""
import argparse
import logging
import sys
from pathlib import Path

import yaml

from espnet_lrsms.asr.build import build_asr_model
from espnet_lrsms.avsr.build import build_avsr_model
from espnet_lrsms.recipe.paper_configs import paper_row
from espnet_lrsms.train.build import factorized_layers, parameter_summary

COLUMNS = ("frontend", "video_frontend", "fusion", "encoder", "decoder", "ctc")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", help="training YAML files (ASR or AVSR)")
    parser.add_argument("--vocab_size", type=int, default=5000, help="token list size (paper: 5000)")
    parser.add_argument(
        "--layers", action="store_true", help="also list every factorized layer: rank, weights, MACs per input vector"
    )
    return parser


def is_avsr_config(path) -> bool:
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    return "video_frontend" in config


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    width = max(64, *(len(str(p)) for p in args.configs))
    header = f"{'config':<{width}} " + " ".join(f"{c.replace('_frontend', ''):>8}" for c in COLUMNS)
    header += f" {'total':>8} {'paper':>7} {'diff':>7}"
    print(header)
    print("-" * len(header))
    for path in args.configs:
        build = build_avsr_model if is_avsr_config(path) else build_asr_model
        model = build(Path(path), vocab_size=args.vocab_size, device="meta")
        parts = {k: v / 1e6 for k, v in parameter_summary(model).items()}
        row = paper_row(path)
        paper = f"{row['params_m']:>7g}" if row else f"{'-':>7}"
        diff = f"{100 * (parts['total'] / row['params_m'] - 1):>+6.2f}%" if row else f"{'-':>7}"
        cells = " ".join(f"{parts[c]:>8.2f}" if c in parts else f"{'-':>8}" for c in COLUMNS)
        print(f"{str(path):<{width}} {cells} {parts['total']:>8.2f} {paper} {diff}")
        if args.layers:
            for name, layer in factorized_layers(model).items():
                print(
                    f"    {name:<60} {layer.out_features}x{layer.in_features} rank {layer.rank:>4}: "
                    f"{layer.num_weights:>9,} weights and MACs/vector (dense {layer.dense_num_weights:,})"
                )
    print("(parameters in millions; front end = ResNet-1D audio, video = 3-D stem + ResNet-18 2-D)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
