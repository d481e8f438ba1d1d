#!/usr/bin/env python3
"""Time one ASR training step of two configs side by side (default: full rank vs LR-SMS).

Both models are built from their training YAML through ESPnet's ``ASRTask.build_model`` (on the
CPU, with the same seed, then moved to ``--device``) and trained on the same random batch. One
step is forward + backward + ``torch.optim.AdamW`` step (lr 6e-4) in train mode (dropout on).
After ``--warmup`` untimed steps per model, the timed steps alternate A, B, A, B, … so that
machine drift (other jobs, clocks, thermals) affects both models alike; the table reports the
median step time.

Batch: ``--frames`` frames in all (paper: 2400), split evenly over ``--batch_size`` utterances of
``frames / batch_size × 640`` samples of 16 kHz waveform each (the ``resnet1d`` front end gives
25 frames/s), with ``--tokens`` random token ids per utterance. ``--parts encoder_decoder`` drops
the front end and feeds random 512-d features of ``frames / batch_size`` frames instead: the
timed step is then encoder + decoder (with the CTC head and both losses, as in training).

Columns of the table:

* ``params``: parameters the step updates (front end excluded with ``--parts encoder_decoder``);
* ``MACs/tok``: multiply-adds of one input vector through every linear layer of encoder and
  decoder: ``in·out`` for ``nn.Linear``, ``rank·(in + out)`` for ``FactorizedLinear``;
* ``tok ratio``: first config's ``MACs/tok`` over this one's;
* ``GMAC/step``: linear-layer multiply-adds of one forward pass over this batch, counted with
  hooks (every ``nn.Linear``/``FactorizedLinear`` of the model, CTC head and decoder output layer
  included, each weighted by the number of vectors it really sees: frames or tokens);
* ``bound``: first config's ``GMAC/step`` over this one's, the speed-up if the step cost only its
  linear layers (the rest of the step costs the same in both models, so the real speed-up is
  lower);
* ``median s``: median seconds of a timed step; ``speed-up``: first config's median over this one's;
* ``peak mem``: memory of training this model, params + gradients + AdamW states + activations:
  on CUDA ``torch.cuda.max_memory_allocated`` during the warm-up steps, minus what was allocated
  before them, plus the model's own parameters; on the CPU (Linux) the peak RSS (``VmHWM``) of a
  child process that builds only this model and runs two steps, minus its RSS before the build
  (the child initialises low-rank factors with ``init: kaiming`` to skip the SVD: shapes, and so
  memory, are the same). CPU figures include allocator slack and are coarser than CUDA's. ``mem ratio``: this config's over the first one's.

Examples::

    .venv/bin/python bench/train_step.py                                      # paper batch, GPU if any
    .venv/bin/python bench/train_step.py --device cpu --threads 2 --parts encoder_decoder \\
        --frames 600 --batch_size 2 --steps 5 --warmup 1
    .venv/bin/python bench/train_step.py --frames 50 --batch_size 1 --steps 2 --warmup 1  # smoke test

Building the LR-SMS model takes minutes on a small CPU (one float64 SVD per factorized layer);
progress is printed. No timing is asserted anywhere: the script only measures and reports.
"""
import argparse
import copy
import csv
import multiprocessing
import platform
import shlex
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = [
    str(REPO / "conf/asr/train_asr_conformer_full_rank.yaml"),
    str(REPO / "conf/asr/train_asr_conformer_lrsms.yaml"),
]
SAMPLES_PER_FRAME = 640  # resnet1d: 25 frames/s at 16 kHz
FEATURE_SIZE = 512  # resnet1d output, the encoder's input with --parts encoder_decoder
LEARNING_RATE = 6e-4
GIB = 2**30
# ESPnet's model calls the deprecated torch.cuda.amp.autocast once per step: keep it quiet.
warnings.filterwarnings("ignore", message=r".*torch\.cuda\.amp\.autocast", category=FutureWarning)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", nargs=2, default=DEFAULT_CONFIGS, metavar=("A", "B"),
                        help="two training YAMLs; speed-up and memory ratio are relative to A "
                             "(default: full rank, LR-SMS)")
    parser.add_argument("--frames", type=int, default=2400,
                        help="frames (25/s) per batch in all, split evenly over the utterances (paper: 2400)")
    parser.add_argument("--batch_size", type=int, default=8, help="utterances per batch")
    parser.add_argument("--tokens", type=int, default=None,
                        help="token ids per utterance (default: frames per utterance / 4)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first (at least 1)")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where to train (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: PyTorch's choice)")
    parser.add_argument("--parts", choices=("all", "encoder_decoder"), default="all",
                        help="all: waveform through the front end; encoder_decoder: skip the front "
                             "end, feed random 512-d features")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="bfloat16: run forward and loss under torch.autocast (meant for CUDA; "
                             "ESPnet keeps the front end in float32)")
    parser.add_argument("--vocab_size", type=int, default=5000, help="token list size (paper: 5000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model init and the batch")
    parser.add_argument("--no_memory", action="store_true",
                        help="skip the memory measurement (on the CPU it builds each model again "
                             "in a child process)")
    parser.add_argument("--plain", action="store_true",
                        help="also time B with every FactorizedLinear replaced by two nn.Linear of the same "
                             "rank (the overhead of this package's layer against a textbook factorization)")
    parser.add_argument("--unfused", action="store_true",
                        help="also time B with ESPnet's own q/k/v projections (one Vᵀx per layer, no fusion)")
    parser.add_argument("--compile", action="store_true",
                        help="also time A and B through torch.compile (default mode; compiled during the "
                             "warm-up steps, which then should be at least 2)")
    parser.add_argument("--out", default=None, help="also write the table to this CSV file")
    return parser


# --------------------------------------------------------------------------------------- models
def build_model(config: str, args, fast_init: bool = False) -> nn.Module:
    """The ESPnet model of ``config`` on the CPU, seeded, without its front end for encoder_decoder.

    ``fast_init`` initialises the low-rank factors with ``init: kaiming`` instead of the SVD
    (same shapes, for measuring memory only).
    """
    from espnet_lrsms.asr.build import build_asr_model

    torch.manual_seed(args.seed)
    overrides = kaiming_overrides(config) if fast_init else None
    model = build_asr_model(config, vocab_size=args.vocab_size, device="cpu", overrides=overrides)
    if args.parts == "encoder_decoder":
        model.frontend = None  # ESPnet's model then takes `speech` as (B, T, 512) features
    return model


def kaiming_overrides(config: str) -> dict:
    """``encoder_conf``/``decoder_conf`` of ``config`` with any ``lowrank.init`` set to kaiming."""
    import yaml

    with open(config, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    overrides = {}
    for key in ("encoder_conf", "decoder_conf"):
        sub = conf.get(key) or {}
        if isinstance(sub.get("lowrank"), dict):
            sub = copy.deepcopy(sub)
            sub["lowrank"]["init"] = "kaiming"
            overrides[key] = sub
    return overrides


def two_linear_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with each ``FactorizedLinear`` as ``nn.Sequential(Linear(n, r), Linear(r, m))``,
    the same weights, and ESPnet's own attention forward (no fused projections)."""
    from espnet_lrsms.lowrank import FactorizedLinear

    model = unfused_copy(model)
    for name, layer in list(model.named_modules()):
        if isinstance(layer, FactorizedLinear):
            inner = nn.Linear(layer.in_features, layer.rank, bias=False)
            outer = nn.Linear(layer.rank, layer.out_features, bias=layer.bias is not None)
            with torch.no_grad():
                inner.weight.copy_(layer.vt)
                outer.weight.copy_(layer.u)
                if layer.bias is not None:
                    outer.bias.copy_(layer.bias)
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent), attr, nn.Sequential(inner, outer))
    return model


def unfused_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose attention modules compute q, k, v with ESPnet's own ``forward_qkv``."""
    model = copy.deepcopy(model)
    for module in model.modules():
        module.__dict__.pop("forward_qkv", None)
    return model


def linear_layers(module: nn.Module):
    """Every ``nn.Linear`` and ``FactorizedLinear`` below ``module`` with its MACs per input vector."""
    from espnet_lrsms.lowrank import FactorizedLinear

    for layer in module.modules():
        if isinstance(layer, FactorizedLinear):
            yield layer, layer.macs_per_token
        elif isinstance(layer, nn.Linear):
            yield layer, layer.in_features * layer.out_features


def macs_per_token(model: nn.Module) -> int:
    """Sum over the linear layers of encoder and decoder of their MACs per input vector."""
    return sum(macs for part in (model.encoder, model.decoder) for _, macs in linear_layers(part))


@contextmanager
def count_linear_macs(model: nn.Module, total: list):
    """While active, add to ``total[0]`` the MACs of every linear layer call of ``model``."""

    def hook(macs):
        def count(layer, inputs, output):
            total[0] += inputs[0].numel() // inputs[0].shape[-1] * macs

        return count

    handles = [layer.register_forward_hook(hook(macs)) for layer, macs in linear_layers(model)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# ---------------------------------------------------------------------------------------- batch
def frames_per_utterance(args) -> int:
    return args.frames // args.batch_size


def tokens_per_utterance(args) -> int:
    return args.tokens if args.tokens is not None else max(1, frames_per_utterance(args) // 4)


def make_batch(args) -> dict:
    """A random batch (on the CPU): waveform or 512-d features, and token ids 1 … vocab_size − 2."""
    gen = torch.Generator().manual_seed(args.seed)
    batch, frames, tokens = args.batch_size, frames_per_utterance(args), tokens_per_utterance(args)
    if args.parts == "encoder_decoder":
        speech = torch.randn(batch, frames, FEATURE_SIZE, generator=gen)
        speech_lengths = torch.full((batch,), frames, dtype=torch.long)
    else:
        samples = frames * SAMPLES_PER_FRAME
        speech = torch.randn(batch, samples, generator=gen) * 0.1
        speech_lengths = torch.full((batch,), samples, dtype=torch.long)
    text = torch.randint(1, args.vocab_size - 1, (batch, tokens), generator=gen)
    text_lengths = torch.full((batch,), tokens, dtype=torch.long)
    return {"speech": speech, "speech_lengths": speech_lengths, "text": text, "text_lengths": text_lengths}


# ------------------------------------------------------------------------------------- training
def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)


def train_step(model, optimizer, batch, args) -> None:
    """Forward + backward + AdamW step (gradients set to None first, as ``zero_grad`` does)."""
    optimizer.zero_grad(set_to_none=True)
    autocast = (
        torch.autocast(device_type=args.device, dtype=torch.bfloat16)
        if args.dtype == "bfloat16"
        else nullcontext()
    )
    with autocast:
        loss, _, _ = model(**batch)
    loss.backward()
    optimizer.step()


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed_step(model, optimizer, batch, args) -> float:
    sync(args.device)
    start = time.perf_counter()
    train_step(model, optimizer, batch, args)
    sync(args.device)
    return time.perf_counter() - start


def param_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


# ----------------------------------------------------------------------------------- CPU memory
def proc_status_bytes(key: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, from Linux's /proc."""
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024  # kB
    raise OSError(f"no {key} in /proc/self/status")


def cpu_memory_child(config: str, args):
    """In a fresh process: peak RSS while building ``config`` and running two training steps,
    minus the RSS before the build (bytes; None where /proc is missing).

    The peak is Linux's ``VmHWM``, reset after the imports through /proc/self/clear_refs.
    ``resource.getrusage(...).ru_maxrss`` is not used: in a spawned child it also holds the
    parent's peak RSS (the kernel keeps the larger of it and the pre-exec image's).
    """
    import espnet_lrsms.asr.task  # noqa: F401  (the heavy imports, before the baseline)

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
            f.write("5")  # reset the peak RSS to the current RSS
        before = proc_status_bytes("VmRSS")
    except OSError:
        return None
    model = build_model(config, args, fast_init=True)
    model.train()
    optimizer = make_optimizer(model)
    batch = make_batch(args)
    for _ in range(2):
        train_step(model, optimizer, batch, args)
    return proc_status_bytes("VmHWM") - before


def measure_cpu_memory(config: str, args) -> int:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(cpu_memory_child, config, args).result()


# ----------------------------------------------------------------------------------------- main
def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def short_name(config: str) -> str:
    name = Path(config).stem
    return name[len("train_asr_"):] if name.startswith("train_asr_") else name


def check_args(args) -> None:
    if args.batch_size < 1 or frames_per_utterance(args) < 1:
        raise SystemExit(f"--frames {args.frames} / --batch_size {args.batch_size} leaves no frame per utterance")
    if args.steps < 1 or args.warmup < 1:
        raise SystemExit("--steps and --warmup must be at least 1")
    if not 1 <= tokens_per_utterance(args) <= frames_per_utterance(args):
        raise SystemExit(
            f"--tokens must be in [1, {frames_per_utterance(args)}] (CTC needs a frame per token)"
        )
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available")
    for config in args.configs:
        if not Path(config).is_file():
            raise SystemExit(f"no such config: {config}")


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    check_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    print(f"command: {shlex.join([sys.executable] + sys.argv)}")
    print(f"device:  {args.device} ({device_name(args.device)}), torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, dtype {args.dtype}")
    print(f"batch:   {args.batch_size} utterance(s) x {frames_per_utterance(args)} frames "
          f"({frames_per_utterance(args) * args.batch_size} frames), {tokens_per_utterance(args)} tokens each, "
          f"parts {args.parts}; {args.warmup} warm-up + {args.steps} timed steps per model, seed {args.seed}",
          flush=True)

    start = time.perf_counter()
    print("importing ESPnet ...", flush=True)
    import espnet_lrsms.asr.task  # noqa: F401

    print(f"  {time.perf_counter() - start:.1f} s", flush=True)
    batch = {k: v.to(device) for k, v in make_batch(args).items()}
    rows = []
    for config in args.configs:
        start = time.perf_counter()
        print(f"building {config} on the CPU ...", flush=True)
        model = build_model(config, args)
        model.to(device).train()
        rows.append({
            "config": short_name(config),
            "path": config,
            "model": model,
            "optimizer": make_optimizer(model),
            "params": sum(p.numel() for p in model.parameters()),
            "macs_per_token": macs_per_token(model),
            "times": [],
        })
        print(f"  built in {time.perf_counter() - start:.1f} s: {rows[-1]['params'] / 1e6:.2f} M parameters",
              flush=True)

    variants = [("plain", two_linear_copy, args.plain), ("unfused", unfused_copy, args.unfused)]
    for suffix, make, wanted in variants:
        if wanted:
            source = rows[1]
            model = make(source["model"]).to(device).train()
            rows.append({**source, "config": f"{source['config']}_{suffix}", "path": None, "model": model,
                         "optimizer": make_optimizer(model), "times": []})
    if args.compile:
        for source in rows[:2]:
            model = copy.deepcopy(source["model"])
            rows.append({**source, "config": f"{source['config']}_compiled", "path": None,
                         "model": torch.compile(model), "optimizer": make_optimizer(model), "times": []})

    # Warm-up; the first step also counts linear MACs, the warm-up gives CUDA memory.
    for row in rows:
        print(f"warm-up {row['config']} ...", flush=True)
        total = [0]
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            allocated_before = torch.cuda.memory_allocated()
        for i in range(args.warmup):
            with count_linear_macs(row["model"], total) if i == 0 else nullcontext():
                train_step(row["model"], row["optimizer"], batch, args)
        sync(args.device)
        row["step_macs"] = total[0]
        if args.device == "cuda" and not args.no_memory:
            peak = torch.cuda.max_memory_allocated()
            row["memory"] = peak - allocated_before + param_bytes(row["model"])

    print(f"timing {args.steps} interleaved steps per model ...", flush=True)
    for step in range(args.steps):
        for row in rows:
            row["times"].append(timed_step(row["model"], row["optimizer"], batch, args))
        print(f"  step {step + 1}/{args.steps}: "
              + ", ".join(f"{row['config']} {row['times'][-1]:.3f} s" for row in rows), flush=True)

    for row in rows:
        del row["model"], row["optimizer"]
    if args.device == "cuda":
        torch.cuda.empty_cache()
    elif not args.no_memory:
        for row in rows:
            if row["path"] is not None:  # the --plain/--unfused copies have B's shapes
                print(f"measuring CPU memory of {row['config']} in a child process ...", flush=True)
                row["memory"] = measure_cpu_memory(row["path"], args)

    report(rows, args)
    return 0


def report(rows, args) -> None:
    """Print the table (and write it to ``--out``)."""
    first = rows[0]
    for row in rows:
        row["median_s"] = statistics.median(row["times"])
        row["token_ratio"] = first["macs_per_token"] / row["macs_per_token"]
        row["bound"] = first["step_macs"] / row["step_macs"]
        row["speed_up"] = first["median_s"] / row["median_s"]
        if row.get("memory") and first.get("memory"):
            row["memory_ratio"] = row["memory"] / first["memory"]

    width = max(len("config"), *(len(row["config"]) for row in rows))
    header = (f"{'config':<{width}} {'params M':>9} {'MACs/tok M':>10} {'tok ratio':>9} {'GMAC/step':>10} "
              f"{'bound':>6} {'median s':>9} {'speed-up':>8} {'peak mem GiB':>12} {'mem ratio':>9}")
    print()
    print(header)
    print("-" * len(header))
    for row in rows:
        memory = f"{row['memory'] / GIB:>12.2f} {row['memory_ratio']:>9.3f}" if "memory_ratio" in row else f"{'-':>12} {'-':>9}"
        print(f"{row['config']:<{width}} {row['params'] / 1e6:>9.2f} {row['macs_per_token'] / 1e6:>10.2f} "
              f"{row['token_ratio']:>9.3f} {row['step_macs'] / 1e9:>10.2f} {row['bound']:>6.3f} "
              f"{row['median_s']:>9.4f} {row['speed_up']:>8.3f} {memory}")
    print(f"speed-up, tok ratio and bound relative to {first['config']}; mem ratio = this / {first['config']}")
    if "memory_ratio" in first:
        print("peak mem: " + (
            "CUDA max_memory_allocated during the warm-up minus what was allocated before, plus the params"
            if args.device == "cuda"
            else "peak RSS (VmHWM) of a child process building the model and running 2 steps, minus its RSS "
                 "before the build"
        ))
    print("step times (s): " + "; ".join(
        f"{row['config']} min {min(row['times']):.4f} max {max(row['times']):.4f}" for row in rows))

    if args.out:
        fields = ["config", "params", "macs_per_token", "token_ratio", "step_macs", "bound", "median_s",
                  "speed_up", "memory", "memory_ratio", "times"]
        settings = {"device": args.device, "device_name": device_name(args.device), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "dtype": args.dtype, "parts": args.parts,
                    "frames": args.frames, "batch_size": args.batch_size, "tokens": tokens_per_utterance(args),
                    "steps": args.steps, "warmup": args.warmup, "seed": args.seed}
        with open(args.out, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=fields + list(settings))
            writer.writeheader()
            for row in rows:
                out = {key: row.get(key, "") for key in fields}
                out["times"] = " ".join(f"{t:.6f}" for t in row["times"])
                writer.writerow({**out, **settings})
        print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
