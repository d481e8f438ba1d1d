#!/usr/bin/env python3
"""Full rank vs LR-SMS on this CPU, in PyTorch, ONNX fp32 and ONNX int8, side by side in one run: size on disk,
encoder forward time at ``--encoder_seconds`` of audio, and decoding real-time factor.

Each config's model (default: the paper's 243 M full-rank and LR-SMS Conformers, ``--vocab_size`` 5000) is built
with random weights (``init: kaiming`` for the factors, no SVD; the shapes are the trained model's), saved as
training saves it (``config.yaml`` + ``model.pth``), loaded back through ``LowRankASRTask.build_model_from_file``
and exported with ``espnet_lrsms.deploy.onnx_export`` (``export_onnx``, then ``quantize_int8``): "ONNX int8" is
dynamic int8 MatMul weights (``export_onnx --quantize int8``), "ONNX int8+Conv" the convolution weights too
(``--quantize_ops MatMul,Conv``).

* size: ``model.pth`` (PyTorch fp32), ``encoder.onnx`` + ``decoder.onnx``, ``encoder.int8.onnx`` +
  ``decoder.int8.onnx`` (of each int8 variant), in MB (10^6 bytes);
* encoder: one forward of waveform -> encoder output and CTC log-probs (``model.encode`` + ``ctc.log_softmax``
  under ``torch.inference_mode``, or ``encoder.onnx``) on ``--encoder_seconds`` of random audio; median of
  ``--repeats`` after one untimed warm-up;
* RTF: decoding seconds / audio seconds, median over ``--utterances`` random utterances of ``--seconds``:
  PyTorch is ESPnet's ``Speech2Text`` (``BatchBeamSearch``, the decoder's cache), ONNX is
  ``espnet_lrsms.deploy.onnx_runtime.OnnxSpeech2Text`` (numpy CTC prefix scores, the decoder recomputing the
  whole prefix each step), both with ``--decode_config`` overridden by ``--beam_size`` and ``--maxlenratio``
  (random weights rarely emit <eos>: the ratio stops hypotheses at a LibriSpeech-like length).

Every timed measurement alternates the two configs (A, B, A, B, ...) so that load from other jobs falls on both;
the load average is printed before and after. Nothing is asserted.

    .venv/bin/python bench/onnx_bench.py --threads 2          # ~12 min on 2 busy cores
"""
import argparse
import logging
import os
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_time import write_trained_model  # noqa: E402
from train_step import DEFAULT_CONFIGS, device_name, kaiming_overrides, short_name  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 16000
RUNTIMES = ("PyTorch", "ONNX fp32", "ONNX int8", "ONNX int8+Conv")
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs=2, default=DEFAULT_CONFIGS, metavar=("A", "B"),
                        help="two training YAMLs (default: full rank, LR-SMS); speed-ups are A over B")
    parser.add_argument("--decode_config", default=str(REPO / "conf/decode_asr.yaml"),
                        help="decoding options (default: the paper's, beam 40, CTC weight 0.1)")
    parser.add_argument("--beam_size", type=int, default=10, help="overrides the decode config (paper: 40)")
    parser.add_argument("--maxlenratio", type=float, default=0.15, help="overrides the decode config")
    parser.add_argument("--encoder_seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3, help="timed encoder forwards per model and runtime")
    parser.add_argument("--utterances", type=int, default=2, help="random utterances decoded per model and runtime")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each decoded utterance")
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads")
    parser.add_argument("--vocab_size", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here (markdown)")
    return parser


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def mb(*paths) -> float:
    return sum(Path(p).stat().st_size for p in paths) / 1e6


def build(config: str, directory: Path, args) -> dict:
    """Write, load back and export one random-weight model; its runners and file sizes."""
    import onnxruntime
    from espnet2.bin.asr_inference import Speech2Text

    from espnet_lrsms.deploy.onnx_export import export_onnx, load_asr_experiment, quantize_int8, write_meta
    from espnet_lrsms.deploy.onnx_runtime import OnnxSpeech2Text

    torch.manual_seed(args.seed)
    config_yaml, model_pth = write_trained_model(Path(config), directory, args.vocab_size,
                                                 overrides=kaiming_overrides(config))
    model, train_args = load_asr_experiment(directory, model_pth)
    onnx_dir = directory / "onnx"
    files, export_s = timed(lambda: export_onnx(model, onnx_dir))
    int8, quantize_s = timed(lambda: quantize_int8(dict(files)))
    conv_dir = onnx_dir / "conv"  # the same fp32 files (links), quantized with Conv
    conv_dir.mkdir()
    for part in ("encoder", "decoder"):
        (conv_dir / files[part].name).symlink_to(files[part])
    conv_files = {part: conv_dir / files[part].name for part in ("encoder", "decoder")}
    conv_int8, conv_s = timed(lambda: quantize_int8(conv_files, ("MatMul", "Conv")))
    with open(args.decode_config, encoding="utf-8") as f:
        options = yaml.safe_load(f) or {}
    options.update(beam_size=args.beam_size, maxlenratio=args.maxlenratio, nbest=1)
    runtime_options = {k: options[k] for k in ("beam_size", "ctc_weight", "penalty", "maxlenratio", "minlenratio")}
    for directory_, int8_ in ((onnx_dir, int8), (conv_dir, conv_int8)):
        write_meta(train_args, directory_, {**files, **{f"{k}.int8": v for k, v in int8_.items()}}, runtime_options,
                   model)
    print(f"  {short_name(config)}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, "
          f"export {export_s:.0f} s, int8 quantization {quantize_s:.0f} s (MatMul), {conv_s:.0f} s (MatMul+Conv)",
          flush=True)
    s2t = Speech2Text(str(config_yaml), str(model_pth), device="cpu", **options)
    session_options = onnxruntime.SessionOptions()
    session_options.intra_op_num_threads = args.threads
    runtimes = {}
    for name, directory_, is_int8 in (("ONNX fp32", onnx_dir, False), ("ONNX int8", onnx_dir, True),
                                      ("ONNX int8+Conv", conv_dir, True)):
        runtime = OnnxSpeech2Text(directory_, int8=is_int8, **runtime_options)
        for part in ("encoder", "decoder"):  # the same files with --threads intra-op threads
            suffix = ".int8.onnx" if is_int8 else ".onnx"
            setattr(runtime, part, onnxruntime.InferenceSession(
                str(directory_ / f"{part}{suffix}"), session_options, providers=["CPUExecutionProvider"]))
        runtimes[name] = runtime
    sizes = {"PyTorch": mb(model_pth), "ONNX fp32": mb(files["encoder"], files["decoder"]),
             "ONNX int8": mb(int8["encoder"], int8["decoder"]),
             "ONNX int8+Conv": mb(conv_int8["encoder"], conv_int8["decoder"])}
    del model
    return {"name": short_name(config), "s2t": s2t, "onnx": runtimes, "size": sizes,
            "params": sum(p.numel() for p in s2t.asr_model.parameters()),
            "encoder": {r: [] for r in RUNTIMES}, "rtf": {r: [] for r in RUNTIMES}, "tokens": {r: [] for r in RUNTIMES}}


def encode(row: dict, runtime: str, wave: np.ndarray) -> None:
    if runtime == "PyTorch":
        model = row["s2t"].asr_model
        speech = torch.from_numpy(wave)[None]
        with torch.inference_mode():
            out, _ = model.encode(speech, torch.tensor([speech.shape[1]]))
            model.ctc.log_softmax(out)
    else:
        row["onnx"][runtime].encode(wave)


def decode(row: dict, runtime: str, wave: np.ndarray) -> int:
    """Decode one utterance; the number of output tokens."""
    if runtime == "PyTorch":
        with torch.inference_mode():
            return len(row["s2t"](torch.from_numpy(wave))[0][2])
    return len(row["onnx"][runtime](wave)[2])


def run(args) -> list:
    rng = np.random.default_rng(args.seed)
    encoder_wave = (0.1 * rng.standard_normal(int(args.encoder_seconds * SAMPLE_RATE))).astype(np.float32)
    utterances = [(0.1 * rng.standard_normal(int(args.seconds * SAMPLE_RATE))).astype(np.float32)
                  for _ in range(args.utterances)]
    with tempfile.TemporaryDirectory() as tmp:
        print("building, saving, loading and exporting the models ...", flush=True)
        rows = [build(config, Path(tmp) / f"model{i}", args) for i, config in enumerate(args.configs)]
        for runtime in RUNTIMES:
            for row in rows:  # warm-up
                encode(row, runtime, encoder_wave)
                decode(row, runtime, utterances[0][:SAMPLE_RATE])
        print(f"load average before timing: {load_average()}", flush=True)
        for repeat in range(args.repeats):
            for runtime in RUNTIMES:
                for row in rows:
                    row["encoder"][runtime].append(timed(lambda: encode(row, runtime, encoder_wave))[1])
            print(f"  encoder pass {repeat + 1}: " + ", ".join(
                f"{row['name']} {r} {row['encoder'][r][-1]:.2f} s" for r in RUNTIMES for row in rows), flush=True)
        for i, wave in enumerate(utterances):
            for runtime in RUNTIMES:
                for row in rows:
                    tokens, seconds = timed(lambda: decode(row, runtime, wave))
                    row["rtf"][runtime].append(seconds / (len(wave) / SAMPLE_RATE))
                    row["tokens"][runtime].append(tokens)
            print(f"  utterance {i + 1}: " + ", ".join(
                f"{row['name']} {r} RTF {row['rtf'][r][-1]:.2f}" for r in RUNTIMES for row in rows), flush=True)
        print(f"load average after timing: {load_average()}", flush=True)
        for row in rows:
            del row["s2t"], row["onnx"]
    return rows


def table(rows: list, args) -> str:
    first, second = rows
    lines = [
        f"| model | runtime | size MB | encoder s at {args.encoder_seconds:g} s | RTF | tokens | "
        f"encoder speed-up | RTF speed-up |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for runtime in RUNTIMES:
            enc = statistics.median(row["encoder"][runtime])
            rtf = statistics.median(row["rtf"][runtime])
            enc_up = statistics.median(first["encoder"][runtime]) / enc
            rtf_up = statistics.median(first["rtf"][runtime]) / rtf
            lines.append(f"| {row['name']} ({row['params'] / 1e6:.0f} M) | {runtime} | {row['size'][runtime]:.1f} | "
                         f"{enc:.3f} | {rtf:.3f} | {sum(row['tokens'][runtime])} | {enc_up:.2f}x | {rtf_up:.2f}x |")
    return "\n".join(lines)


def goals(rows: list) -> str:
    full, lrsms = rows
    med = lambda row, key, runtime: statistics.median(row[key][runtime])  # noqa: E731
    out = []
    for runtime in ("ONNX int8", "ONNX int8+Conv"):
        ratio = full["size"]["PyTorch"] / lrsms["size"][runtime]
        out.append(f"- {lrsms['name']} {runtime} on disk is 1/{ratio:.1f} of {full['name']} PyTorch fp32 "
                   f"(goal: at most 1/7): {'met' if ratio >= 7 else 'not met'}")
    for runtime in RUNTIMES:
        enc = med(full, "encoder", runtime) / med(lrsms, "encoder", runtime)
        rtf = med(full, "rtf", runtime) / med(lrsms, "rtf", runtime)
        out.append(f"- {runtime}: {lrsms['name']} is {enc:.2f}x faster in the encoder and {rtf:.2f}x in RTF than "
                   f"{full['name']} (goal: at least 1.5x): encoder {'met' if enc >= 1.5 else 'not met'}, "
                   f"RTF {'met' if rtf >= 1.5 else 'not met'}")
    for row in rows:
        enc = med(row, "encoder", "PyTorch") / med(row, "encoder", "ONNX fp32")
        rtf = med(row, "rtf", "PyTorch") / med(row, "rtf", "ONNX fp32")
        out.append(f"- {row['name']}: ONNX fp32 is {enc:.2f}x PyTorch's speed in the encoder and {rtf:.2f}x in RTF "
                   f"(goal: no slower, >= 1): encoder {'met' if enc >= 1 else 'not met'}, "
                   f"RTF {'met' if rtf >= 1 else 'not met'}")
    return "\n".join(out)


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.getLogger("espnet.nets.beam_search").setLevel(logging.ERROR)
    logging.getLogger("root").setLevel(logging.ERROR)
    import onnxruntime

    import espnet_lrsms  # noqa: F401  (registers the low-rank classes, as Speech2Text users do)

    command = shlex.join(["python", "bench/onnx_bench.py", *(sys.argv[1:] if argv is None else argv)])
    header = (f"command: {command}\n"
              f"CPU: {device_name('cpu')}, {os.cpu_count()} cores; torch {torch.__version__} and onnxruntime "
              f"{onnxruntime.__version__}, {args.threads} threads each; load average at start: {load_average()}\n"
              f"encoder: median of {args.repeats} forwards at {args.encoder_seconds:g} s; RTF: median of "
              f"{args.utterances} utterances of {args.seconds:g} s, beam {args.beam_size}, maxlenratio "
              f"{args.maxlenratio}, {Path(args.decode_config).name} otherwise; vocabulary {args.vocab_size}")
    print(header, flush=True)
    rows = run(args)
    result = f"{header}\nload average at end: {load_average()}\n\n{table(rows, args)}\n\n{goals(rows)}"
    print("\n" + result)
    if args.markdown:
        args.markdown.write_text(result + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
