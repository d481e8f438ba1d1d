#!/usr/bin/env python3
"""Time decoding of two models side by side (default: full rank vs LR-SMS) through ESPnet's ``Speech2Text``.

Each config's model is built with random weights (``init: kaiming`` for the factors: no SVD; the shapes
are the trained model's), saved as training saves it (``config.yaml`` + ``model.pth``) and loaded by
``espnet2.bin.asr_inference.Speech2Text`` with the options of ``--decode_config`` (the paper's
``conf/decode_asr.yaml``: beam 40, CTC weight 0.1), ``--beam_size`` and ``--maxlenratio`` overriding it.
ESPnet then picks its vectorized ``BatchBeamSearch`` and scores CTC prefixes only for the
``1.5 × beam`` best tokens of the decoder (``pre_beam_score_key: full``). ``--attention espnet`` keeps
ESPnet's own attention in both models: each step then projects the (expanded) encoder output through
every source-attention ``linear_k/v`` once per hypothesis; ``shared`` (default, both models alike) once.

The utterances (``--utterances`` of ``--seconds`` of random 16 kHz audio, or ``--audio`` files) are
decoded by A, B, A, B, … after one untimed warm-up utterance per model. Reported per model: real-time
factor (decoding seconds / audio seconds, median over utterances), B's speed-up over A, and the shares
of the encoder (``asr_model.encode``) and of the beam search (the rest) in the total time, with the
number of output tokens. Random weights rarely emit ``<sos/eos>``, so with ``maxlenratio: 0`` each
hypothesis runs to the encoder length (25 tokens/s, some 7× a trained model's); ``--maxlenratio 0.15``
stops at a LibriSpeech-like length. Nothing is asserted.

    .venv/bin/python bench/decode.py --threads 2                       # 3 × 4 s, beam 10: ~3 min on 2 cores
    .venv/bin/python bench/decode.py --threads 2 --beam_size 40 --utterances 10   # the paper's beam
"""
import argparse
import copy
import logging
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_time import write_trained_model  # noqa: E402
from espnet_lrsms.asr.lowrank_blocks import fuse_shared_input_projections  # noqa: E402
from train_step import DEFAULT_CONFIGS, device_name, kaiming_overrides, short_name  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 16000
warnings.filterwarnings("ignore", category=FutureWarning)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs=2, default=DEFAULT_CONFIGS, metavar=("A", "B"),
                        help="two training YAMLs (default: full rank, LR-SMS); ratios are A over B")
    parser.add_argument("--decode_config", default=str(REPO / "conf/decode_asr.yaml"),
                        help="Speech2Text options (default: the paper's, beam 40, CTC weight 0.1)")
    parser.add_argument("--beam_size", type=int, default=10,
                        help="overrides the decode config's beam (default 10 for a short run; paper: 40)")
    parser.add_argument("--maxlenratio", type=float, default=None,
                        help="overrides the decode config's maxlenratio (0: up to the encoder length)")
    parser.add_argument("--utterances", type=int, default=3, help="random utterances to decode (without --audio)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each random utterance")
    parser.add_argument("--audio", nargs="*", default=None, help="audio files to decode instead (16 kHz)")
    parser.add_argument("--attention", choices=("shared", "espnet"), default="shared",
                        help="shared (default): both models' attention modules project the encoder output "
                             "once for all hypotheses (and fuse factorized q/k/v); espnet: ESPnet's own "
                             "forward_qkv in both, which projects it again for every hypothesis")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--vocab_size", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def load_audio(args):
    """(name, 1-D float32 waveform) of every utterance."""
    if args.audio:
        import soundfile

        out = []
        for path in args.audio:
            wave, rate = soundfile.read(path, dtype="float32")
            if rate != SAMPLE_RATE:
                raise SystemExit(f"{path}: {rate} Hz, expected {SAMPLE_RATE}")
            out.append((Path(path).stem, torch.from_numpy(wave.reshape(len(wave), -1)[:, 0].copy())))
        return out
    gen = torch.Generator().manual_seed(args.seed)
    samples = int(args.seconds * SAMPLE_RATE)
    return [(f"random{i}", torch.randn(samples, generator=gen) * 0.1) for i in range(args.utterances)]


def decode_options(args) -> dict:
    with open(args.decode_config, encoding="utf-8") as f:
        options = yaml.safe_load(f) or {}
    options["beam_size"] = args.beam_size
    if args.maxlenratio is not None:
        options["maxlenratio"] = args.maxlenratio
    return options


def load_speech2text(config: str, directory: Path, args, options: dict):
    """Speech2Text on a random-weight model of ``config`` written to ``directory``; its encoder timed."""
    from espnet2.bin.asr_inference import Speech2Text

    torch.manual_seed(args.seed)
    files = write_trained_model(Path(config), directory, args.vocab_size, overrides=kaiming_overrides(config))
    s2t = Speech2Text(*files, device=args.device, **options)
    model = s2t.asr_model
    for module in model.modules():
        module.__dict__.pop("forward_qkv", None)
    if args.attention == "shared":
        fuse_shared_input_projections(model, dense=True)
    encode, encoder_times = model.encode, []

    def timed_encode(*a, **k):
        sync(args.device)
        start = time.perf_counter()
        out = encode(*a, **k)
        sync(args.device)
        encoder_times.append(time.perf_counter() - start)
        return out

    model.encode = timed_encode
    return s2t, encoder_times


def sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def run(args) -> list:
    """Decode every utterance with both models, interleaved; returns one row per model."""
    options = decode_options(args)
    utterances = load_audio(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, config in enumerate(args.configs):
            print(f"building and loading {config} ...", flush=True)
            s2t, encoder_times = load_speech2text(config, Path(tmp) / f"model{i}", args, options)
            rows.append({"config": short_name(config), "s2t": s2t, "encoder_times": encoder_times,
                         "params": sum(p.numel() for p in s2t.asr_model.parameters()),
                         "total": [], "encoder": [], "tokens": [], "rtf": []})
    print(f"decode options: {options}", flush=True)
    for row in rows:  # warm-up
        row["s2t"](utterances[0][1][: SAMPLE_RATE])
    for name, wave in utterances:
        seconds = len(wave) / SAMPLE_RATE
        for row in rows:
            row["encoder_times"].clear()
            sync(args.device)
            start = time.perf_counter()
            with torch.inference_mode():
                results = row["s2t"](wave)
            sync(args.device)
            total = time.perf_counter() - start
            row["total"].append(total)
            row["encoder"].append(sum(row["encoder_times"]))
            row["tokens"].append(len(results[0][2]))
            row["rtf"].append(total / seconds)
        print(f"  {name} ({seconds:.1f} s): " + ", ".join(
            f"{row['config']} {row['total'][-1]:.2f} s ({row['tokens'][-1]} tokens)" for row in rows), flush=True)
    for row in rows:
        del row["s2t"], row["encoder_times"]
    return rows


def report(rows, args) -> None:
    first = rows[0]
    for row in rows:
        row["median_rtf"] = statistics.median(row["rtf"])
        row["encoder_share"] = sum(row["encoder"]) / sum(row["total"])
    width = max(len("config"), *(len(row["config"]) for row in rows))
    header = (f"{'config':<{width}} {'params M':>9} {'RTF':>7} {'speed-up':>8} {'encoder':>8} {'beam search':>11} "
              f"{'enc s':>7} {'search s':>8} {'tokens':>7}")
    print()
    print(header)
    print("-" * len(header))
    for row in rows:
        encoder_s, total_s = sum(row["encoder"]), sum(row["total"])
        print(f"{row['config']:<{width}} {row['params'] / 1e6:>9.2f} {row['median_rtf']:>7.3f} "
              f"{first['median_rtf'] / row['median_rtf']:>8.3f} {row['encoder_share']:>8.1%} "
              f"{1 - row['encoder_share']:>11.1%} {encoder_s:>7.2f} {total_s - encoder_s:>8.2f} "
              f"{sum(row['tokens']):>7d}")
    encoder_ratio = sum(first["encoder"]) / sum(rows[1]["encoder"])
    search_ratio = (sum(first["total"]) - sum(first["encoder"])) / (sum(rows[1]["total"]) - sum(rows[1]["encoder"]))
    print(f"RTF: median over utterances of decoding s / audio s; speed-up relative to {first['config']} "
          f"(encoder alone {encoder_ratio:.3f}x, beam search alone {search_ratio:.3f}x); shares of the summed time")


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"command: {shlex.join([sys.executable] + sys.argv)}")
    print(f"device:  {args.device} ({device_name('cuda' if str(args.device).startswith('cuda') else 'cpu')}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}", flush=True)
    logging.getLogger("espnet.nets.beam_search").setLevel(logging.ERROR)  # "max output length" per utterance
    import espnet_lrsms  # noqa: F401  (registers the low-rank classes, as Speech2Text users do)

    rows = run(copy.copy(args))
    report(rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
