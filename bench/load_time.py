#!/usr/bin/env python3
"""What a user waits for, side by side in one run: loading a trained model through ESPnet's own API
(``ASRTask.build_model_from_file``, as ``Speech2Text``, ``asr_inference`` and ``pack`` users do) for the
full-rank baseline and LR-SMS, and building each ``conf/asr`` row from scratch for training (dense init,
factorization and the spectral SVD of Eq. 1).

    python bench/load_time.py --threads 2 [--device cpu|cuda] [--configs conf/asr/*.yaml]

Prints seconds and ratios; nothing is asserted (timings belong here, not in the tests).
"""
import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
FULL_RANK = REPO / "conf" / "asr" / "train_asr_conformer_full_rank.yaml"
LRSMS = REPO / "conf" / "asr" / "train_asr_conformer_lrsms.yaml"


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def write_trained_model(config: Path, out_dir: Path, vocab_size: int, overrides=None):
    """A config.yaml with its token list and a checkpoint of the model it builds, as training leaves them
    (``overrides``: top-level config keys changed for building the weights, not written to config.yaml)."""
    from espnet_lrsms.asr.build import build_asr_model
    from espnet_lrsms.train.build import dummy_token_list

    from espnet_lrsms.asr.task import LowRankASRTask

    model = build_asr_model(config, vocab_size=vocab_size, overrides=overrides)
    args = LowRankASRTask.get_parser().parse_args(["--config", str(config), "--token_list", "x", "--output_dir", "x"])
    args.token_list = dummy_token_list(vocab_size)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(vars(args)))  # every option, as training writes it
    torch.save(model.state_dict(), out_dir / "model.pth")
    return out_dir / "config.yaml", out_dir / "model.pth"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--vocab_size", type=int, default=5000)
    parser.add_argument("--configs", nargs="*", type=Path, default=sorted((REPO / "conf" / "asr").glob("*.yaml")))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)

    import espnet_lrsms  # noqa: F401  (registers the classes, as Speech2Text users do)
    from espnet2.tasks.asr import ASRTask

    from espnet_lrsms.lowrank import materialize_spectral_init_
    from espnet_lrsms.asr.build import build_asr_model

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    print("\n## Loading a trained model: ASRTask.build_model_from_file")
    with tempfile.TemporaryDirectory() as tmp:
        loads = {}
        for config in (FULL_RANK, LRSMS):
            files = write_trained_model(config, Path(tmp) / config.stem, args.vocab_size)
            _, loads[config.stem] = timed(lambda: ASRTask.build_model_from_file(*files, args.device))
        base = loads[FULL_RANK.stem]
        for name, seconds in loads.items():
            print(f"{name:45s} {seconds:7.1f} s   {seconds / base:5.2f}x full rank")

    print("\n## Building for training from scratch: dense init, factorization, spectral init (Eq. 1)")
    print(f"{'config':45s} {'build':>7s} {'SVD':>7s} {'total':>7s}")
    for config in args.configs:
        model, build_s = timed(
            lambda: build_asr_model(config, vocab_size=args.vocab_size, device=args.device, spectral_init=False)
        )
        count, svd_s = timed(lambda: materialize_spectral_init_(model))
        print(f"{config.name:45s} {build_s:6.1f}s {svd_s:6.1f}s {build_s + svd_s:6.1f}s   ({count} layers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
