"""Print the parameter count of AVSR configs, built through ``AVSRTask.build_model``.

    python -m espnet_lrsms.bin.avsr_count_params conf/avsr/*.yaml [--vocab_size 5000]

Like ``espnet_lrsms.bin.count_params`` (meta device: nothing is allocated), with the video front end
and the fusion MLP in their own columns. Where a ``paper_rows.tsv`` beside a config names the paper's
figure (Table III), it is printed with the relative difference.
"""
import argparse
import logging
import sys

from espnet_lrsms.tasks.build import build_avsr_model, paper_row, parameter_summary

COLUMNS = ("frontend", "video_frontend", "fusion", "encoder", "decoder", "ctc")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", help="AVSR training YAML files")
    parser.add_argument("--vocab_size", type=int, default=5000, help="token list size (paper: 5000)")
    return parser


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    header = (
        f"{'config':<64} {'audio':>7} {'video':>7} {'fusion':>7} {'encoder':>8} {'decoder':>8} {'ctc':>6} "
        f"{'total':>8} {'paper':>7} {'diff':>7}"
    )
    print(header)
    print("-" * len(header))
    for path in args.configs:
        model = build_avsr_model(path, vocab_size=args.vocab_size, device="meta")
        parts = {k: v / 1e6 for k, v in parameter_summary(model).items()}
        row = paper_row(path)
        paper = f"{row['params_m']:>7g}" if row else f"{'-':>7}"
        diff = f"{100 * (parts['total'] / row['params_m'] - 1):>+6.2f}%" if row else f"{'-':>7}"
        a, v, f, e, d, c = (parts.get(k, 0.0) for k in COLUMNS)
        print(f"{path:<64} {a:>7.2f} {v:>7.2f} {f:>7.2f} {e:>8.2f} {d:>8.2f} {c:>6.2f} {parts['total']:>8.2f} {paper} {diff}")
    print("(parameters in millions; audio = ResNet-1D front end, video = 3-D stem + ResNet-18 2-D)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
