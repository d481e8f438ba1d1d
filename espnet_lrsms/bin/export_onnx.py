"""Export a trained ASR experiment to ONNX for decoding without PyTorch or ESPnet.

    python -m espnet_lrsms.bin.export_onnx --exp_dir exp/asr_train_asr_lrsms_tiny_raw_en_bpe30 \\
        --model_file valid.acc.best.pth --out_dir exp/onnx [--quantize int8 [--quantize_ops MatMul,Conv]] \\
        [--decoding_config conf/decode.yaml]

Writes ``encoder.onnx`` (waveform -> encoder output and CTC log-probs), ``decoder.onnx`` (prefixes + encoder
output -> next-token log-probs), ``meta.yaml`` (token list, token type, special ids, decoding options) and, with
``--quantize int8``, ``encoder.int8.onnx`` and ``decoder.int8.onnx`` (dynamic int8 MatMul weights; with
``--quantize_ops MatMul,Conv`` the convolution weights too). ``--model_file``
is a path or a file name inside ``--exp_dir``. ASR experiments only (LR-SMS and full rank); AVSR not yet.
"""
import argparse
import logging
import os
import sys
from pathlib import Path

from espnet_lrsms.deploy.onnx_export import export_experiment


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, required=True, help="ESPnet experiment directory (config.yaml)")
    parser.add_argument("--model_file", required=True, help="weights: a path, or a file name inside --exp_dir")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--quantize", choices=["int8"], default=None, help="also write int8 models (default: fp32 only)")
    parser.add_argument(
        "--quantize_ops",
        default=None,
        help="with --quantize int8: op types whose weights are quantized, MatMul and/or Conv (default: MatMul)",
    )
    parser.add_argument(
        "--decoding_config", type=Path, default=None, help="ESPnet decoding YAML (beam_size, ctc_weight, ...) for meta.yaml"
    )
    return parser


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        files = export_experiment(
            args.exp_dir, args.model_file, args.out_dir, args.quantize, args.decoding_config, args.quantize_ops
        )
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"export_onnx: {error}")
    for name, path in files.items():
        print(f"{path}\t{os.path.getsize(path) / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
