"""Print the parameter count of ASR configs, built through ESPnet's ``ASRTask.build_model``.

    python -m espnet_lrsms.bin.count_params conf/asr/*.yaml [--vocab_size 5000] [--layers]

Models are built on PyTorch's meta device, so nothing is allocated or initialised and even the
243 M model counts in seconds. Where a ``paper_rows.tsv`` beside a config names the paper's
figure, it is printed with the relative difference.
"""
import argparse
import logging
import sys

from espnet_lrsms.tasks.build import build_asr_model, factorized_layers, paper_row, parameter_summary


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", help="training YAML files")
    parser.add_argument("--vocab_size", type=int, default=5000, help="token list size (paper: 5000)")
    parser.add_argument(
        "--layers", action="store_true", help="also list every factorized layer: rank, weights, MACs per input vector"
    )
    return parser


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    header = f"{'config':<64} {'frontend':>9} {'encoder':>9} {'decoder':>9} {'ctc':>6} {'total':>9} {'paper':>7} {'diff':>7}"
    print(header)
    print("-" * len(header))
    for path in args.configs:
        model = build_asr_model(path, vocab_size=args.vocab_size, device="meta")
        parts = {k: v / 1e6 for k, v in parameter_summary(model).items()}
        row = paper_row(path)
        paper = f"{row['params_m']:>7g}" if row else f"{'-':>7}"
        diff = f"{100 * (parts['total'] / row['params_m'] - 1):>+6.2f}%" if row else f"{'-':>7}"
        print(
            f"{path:<64} {parts.get('frontend', 0):>9.2f} {parts.get('encoder', 0):>9.2f} "
            f"{parts.get('decoder', 0):>9.2f} {parts.get('ctc', 0):>6.2f} {parts['total']:>9.2f} {paper} {diff}"
        )
        if args.layers:
            for name, layer in factorized_layers(model).items():
                print(
                    f"    {name:<60} {layer.out_features}x{layer.in_features} rank {layer.rank:>4}: "
                    f"{layer.num_weights:>9,} weights and MACs/vector (dense {layer.dense_num_weights:,})"
                )
    print("(parameters in millions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
