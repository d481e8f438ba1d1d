"""Decode a wav.scp with an ONNX export (``export_onnx``), without PyTorch or ESPnet.

    python -m espnet_lrsms.bin.onnx_decode --model_dir exp/onnx --wav_scp dump/raw/test_clean/wav.scp \\
        --output exp/onnx/decode_test_clean/text [--int8] [--beam_size 8] [--ctc_weight 0.3]

Writes ``<utt> <text>`` lines (ESPnet's ``1best_recog/text`` layout). Decoding options default to the export's
``meta.yaml`` (the decoding config given to ``export_onnx``, else ESPnet's defaults).
"""
import argparse
import sys
from pathlib import Path

from espnet_lrsms.deploy.onnx_runtime import decode_wav_scp
from espnet_lrsms.fileio import write_text_atomic


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", type=Path, required=True, help="export_onnx's --out_dir")
    parser.add_argument("--wav_scp", type=Path, required=True, help="Kaldi wav.scp: <utt> <wav path>")
    parser.add_argument("--output", type=Path, required=True, help="text file to write")
    parser.add_argument("--int8", action="store_true", help="use the int8 files (export_onnx --quantize int8)")
    parser.add_argument("--beam_size", type=int, default=None)
    parser.add_argument("--ctc_weight", type=float, default=None)
    parser.add_argument("--penalty", type=float, default=None)
    parser.add_argument("--maxlenratio", type=float, default=None)
    parser.add_argument("--minlenratio", type=float, default=None)
    return parser


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    for path in (args.model_dir / "meta.yaml", args.wav_scp):
        if not path.is_file():
            raise SystemExit(f"onnx_decode: {path}: no such file")
    options = {k: getattr(args, k) for k in ("beam_size", "ctc_weight", "penalty", "maxlenratio", "minlenratio")}
    results = decode_wav_scp(args.model_dir, args.wav_scp, int8=args.int8, **options)
    write_text_atomic(args.output, "".join(f"{utt} {text}\n" for utt, text in results))
    print(f"decoded {len(results)} utterances into {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
