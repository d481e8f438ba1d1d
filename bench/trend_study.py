#!/usr/bin/env python3
"""The trend study of docs/study.md: the tiny demo architecture trained nine ways on the harder demo corpus
(``demo/study``: 40-word commands, twelve voices), two seeds each, through the LibriSpeech recipe.

    .venv/bin/python bench/trend_study.py --workdir exp_study [--epochs 15] [--seeds 1 2] [--jobs 2]

Settings (all the tiny architecture of ``conf/demo/train_asr_lrsms_tiny.yaml``, same data, epochs and
learning-rate schedule):

==========================  =====================================================================
full_rank                   ``lowrank: null`` in encoder and decoder
lrsms_svd                   the config's layer-wise linear ranks, spectral (SVD) init: LR-SMS
lrsms_kaiming               the same ranks, variance-corrected Kaiming init of the factors
lrsms_kaiming_traditional   the same ranks, each factor drawn as its own linear layer
uniform_mhsa                uniform α = 0.25 on MHSA only (FFNs dense), as Table I
uniform_ffn                 uniform α = 0.25 on FFNs only (MHSA dense), as Table I
uniform_both                uniform α on both, α chosen to match lrsms_svd's parameter count
warmup_full_rank            lrsms_svd after ``--warmup_full_rank_epochs`` (a fifth of the epochs) dense
frobenius_decay             lrsms_svd with ``frobenius_decay`` equal to the config's weight decay
==========================  =====================================================================

Stages 1-10 run once; each setting × seed runs stages 11-13 (``--asr_tag study_<setting>_seed<s>``),
``--jobs`` at a time with ``--threads`` each. A finished run (its test ``result.txt`` exists) is not run
again, so an interrupted study resumes. Writes to ``--workdir``: ``study.csv`` (one row per run),
``study.md`` (mean ± half-range over seeds; validation accuracy at the last epoch, mean and per seed) and
``valid_acc.png`` (validation accuracy per epoch).
"""
import argparse
import copy
import csv
import logging
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs2" / "librispeech" / "asr1"
BASE_CONFIG = RECIPE / "conf" / "demo" / "train_asr_lrsms_tiny.yaml"
DECODE_CONFIG = RECIPE / "conf" / "demo" / "decode_asr_tiny.yaml"
SETTINGS = ("full_rank", "lrsms_svd", "lrsms_kaiming", "lrsms_kaiming_traditional", "uniform_mhsa",
            "uniform_ffn", "uniform_both", "warmup_full_rank", "frobenius_decay")
SUBMODELS = ("encoder_conf", "decoder_conf")
VALID_ACC = re.compile(r"(\d+)epoch results: .*\[valid\].*?\bacc=([0-9.]+)")


def scaled_schedule(config: dict, epochs: int) -> dict:
    """``config`` trained for ``epochs``: its warm-up/cool-down schedule shrunk in proportion."""
    config = copy.deepcopy(config)
    scale = epochs / config["max_epoch"]
    sched = config["scheduler_conf"]
    config["max_epoch"] = epochs
    sched.update(total_epochs=epochs, warmup_epochs=round(sched["warmup_epochs"] * scale, 2),
                 cooldown_epochs=round(sched["cooldown_epochs"] * scale, 2))
    return config


def with_lowrank(config: dict, **blocks) -> dict:
    """``config`` with each sub-model's ``lowrank:`` replaced (``None``: dense) or updated (a dict)."""
    config = copy.deepcopy(config)
    for submodel in SUBMODELS:
        value = blocks.get(submodel.split("_")[0], "keep")
        if value is None:
            config[submodel]["lowrank"] = None
        elif value != "keep":
            config[submodel]["lowrank"] = {**config[submodel]["lowrank"], **value}
    return config


def uniform(alpha_mhsa, alpha_ffn) -> dict:
    block = {"mhsa": alpha_mhsa, "ffn": alpha_ffn, "init": "svd"}
    return {"encoder": block, "decoder": block}


def count_parameters(config: dict, vocab_size: int, scratch: Path) -> int:
    from espnet_lrsms.asr.build import build_asr_model
    from espnet_lrsms.train.build import parameter_summary

    scratch.write_text(yaml.safe_dump(config, sort_keys=False))
    return parameter_summary(build_asr_model(scratch, vocab_size=vocab_size, device="meta"))["total"]


def matched_uniform_alpha(config: dict, target: int, vocab_size: int, scratch: Path) -> float:
    """The α in 0.01 steps whose uniform MHSA+FFN model's parameter count is closest to ``target`` (the count
    grows with α, so a bisection finds it)."""
    def count(hundredths: int) -> int:
        alpha = hundredths / 100
        return count_parameters(with_lowrank(config, **uniform(alpha, alpha)), vocab_size, scratch)

    logger = logging.getLogger("espnet_lrsms")
    level = logger.level
    logger.setLevel(logging.ERROR)  # ranks above break-even are warned of at every α tried
    try:
        low, high = 1, 100  # the first α with a count >= target lies in (low, high]
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if count(middle) >= target else (middle, high)
        best = min((low, high), key=lambda h: abs(count(h) - target))
    finally:
        logger.setLevel(level)
    return best / 100


def study_configs(base: dict, epochs: int, vocab_size: int, conf_dir: Path) -> dict:
    """Write one training YAML per setting into ``conf_dir``; returns {setting: (path, recipe options)}."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    lrsms = scaled_schedule(base, epochs)
    decay = lrsms["optim_conf"].get("weight_decay", 0.0)
    configs = {
        "full_rank": (with_lowrank(lrsms, encoder=None, decoder=None), []),
        "lrsms_svd": (lrsms, []),
        "lrsms_kaiming": (with_lowrank(lrsms, encoder={"init": "kaiming"}, decoder={"init": "kaiming"}), []),
        "lrsms_kaiming_traditional": (with_lowrank(lrsms, encoder={"init": "kaiming_traditional"},
                                                   decoder={"init": "kaiming_traditional"}), []),
        "uniform_mhsa": (with_lowrank(lrsms, **uniform(0.25, None)), []),
        "uniform_ffn": (with_lowrank(lrsms, **uniform(None, 0.25)), []),
        "warmup_full_rank": (lrsms, ["--warmup_full_rank_epochs", str(max(1, round(epochs / 5)))]),
        "frobenius_decay": (with_lowrank(lrsms, encoder={"frobenius_decay": decay},
                                         decoder={"frobenius_decay": decay}), []),
    }
    target = count_parameters(lrsms, vocab_size, conf_dir / "scratch.yaml")
    alpha = matched_uniform_alpha(lrsms, target, vocab_size, conf_dir / "scratch.yaml")
    configs["uniform_both"] = (with_lowrank(lrsms, **uniform(alpha, alpha)), [])
    (conf_dir / "scratch.yaml").unlink()
    written = {}
    for setting in SETTINGS:
        config, options = configs[setting]
        path = conf_dir / f"train_{setting}.yaml"
        path.write_text(f"# bench/trend_study.py: setting {setting}\n" + yaml.safe_dump(config, sort_keys=False))
        written[setting] = (path, options)
    return written


def recipe(workdir: Path, corpus: Path, nbpe: int, threads: int, log: Path, *options: str) -> None:
    """Run the LibriSpeech recipe with the study's data and experiment directories; raise if it fails."""
    env = {**os.environ, "LIBRISPEECH": str(corpus), "OMP_NUM_THREADS": str(threads)}
    command = ["./run.sh", "--ngpu", "0", "--nbpe", str(nbpe), "--nj", str(threads), "--inference_nj", "1",
               "--datadir", str(workdir / "data"), "--expdir", str(workdir / "exp"),
               "--train_set", "train_clean_100", "--valid_set", "dev_clean", "--test_sets", "dev_clean test_clean",
               "--inference_config", str(DECODE_CONFIG), "--inference_asr_model", "valid.acc.best.pth", *options]
    with open(log, "w", encoding="utf-8") as out:
        if subprocess.run(command, cwd=RECIPE, env=env, stdout=out, stderr=subprocess.STDOUT).returncode:
            raise RuntimeError(f"{' '.join(command)} failed: see {log}")


def run_one(args, setting: str, seed: int, config: Path, options: list) -> dict:
    tag = f"study_{setting}_seed{seed}"
    logs = args.workdir / "logs"
    common = ["--asr_config", str(config), "--asr_tag", tag, "--asr_args", f"--seed {seed}", *options]
    exp = args.workdir / "exp" / f"asr_{tag}"  # a tag given is used as it is (no _warmup_full_rank<E> added)
    timing = exp / "study_train_seconds.txt"
    if not timing.exists():
        start = time.perf_counter()
        recipe(args.workdir, args.corpus, args.nbpe, args.threads, logs / f"{tag}.train.log",
               "--stage", "11", "--stop_stage", "11", *common)
        timing.write_text(f"{time.perf_counter() - start:.1f}\n")
    decode = exp / "decode_asr_tiny_asr_model_valid.acc.best"
    if not (decode / "test_clean" / "score_wer" / "result.txt").exists():
        recipe(args.workdir, args.corpus, args.nbpe, args.threads, logs / f"{tag}.decode.log",
               "--stage", "12", "--stop_stage", "13", *common)
    print(f"done: {tag}", flush=True)
    return collect(exp, setting, seed, args.vocab_size)


def collect(exp: Path, setting: str, seed: int, vocab_size: int) -> dict:
    from espnet_lrsms.scoring.results import read_sum_avg
    from espnet_lrsms.asr.build import build_asr_model
    from espnet_lrsms.train.build import parameter_summary

    decode = exp / "decode_asr_tiny_asr_model_valid.acc.best"
    wer = {name: read_sum_avg(decode / name / "score_wer" / "result.txt")[2][4] for name in ("dev_clean", "test_clean")}
    acc = {}
    for log in (exp / "train_full_rank_warmup.log", exp / "train.log"):  # warm-up epochs first, then the rest
        if log.exists():
            acc.update({int(e): float(a) for e, a in VALID_ACC.findall(log.read_text(encoding="utf-8"))})
    params = parameter_summary(build_asr_model(exp / "config.yaml", vocab_size=vocab_size, device="meta"))["total"]
    return {"setting": setting, "seed": seed, "params": params,
            "train_seconds": float((exp / "study_train_seconds.txt").read_text()),
            "dev_wer": wer["dev_clean"], "test_wer": wer["test_clean"],
            "valid_acc": " ".join(f"{acc[e]:.4f}" for e in sorted(acc))}


def mean_spread(values) -> str:
    return f"{statistics.mean(values):.1f} ± {(max(values) - min(values)) / 2:.1f}"


def write_outputs(rows: list, workdir: Path, command: str) -> None:
    with open(workdir / "study.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"`{command}`", "",
             "| setting | parameters | training time (s) | dev WER (%) | test WER (%) | valid acc, last epoch | per seed |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for setting in SETTINGS:
        runs = [r for r in rows if r["setting"] == setting]
        if not runs:
            continue
        last = [float(r["valid_acc"].split()[-1]) for r in runs]
        lines.append(f"| {setting} | {runs[0]['params']:,} | {mean_spread([r['train_seconds'] for r in runs])} | "
                     f"{mean_spread([r['dev_wer'] for r in runs])} | {mean_spread([r['test_wer'] for r in runs])} | "
                     f"{statistics.mean(last):.3f} | {', '.join(f'{a:.3f}' for a in last)} |")
    (workdir / "study.md").write_text("\n".join(lines) + "\n", encoding="utf-8")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for setting in SETTINGS:
        curves = [list(map(float, r["valid_acc"].split())) for r in rows if r["setting"] == setting]
        if curves:
            length = min(map(len, curves))
            mean = [statistics.mean(c[e] for c in curves) for e in range(length)]
            ax.plot(range(1, length + 1), mean, label=setting, linestyle="--" if "full_rank" in setting else "-")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (attention decoder, mean of seeds)")
    ax.set_title("Trend study on demo/study (tiny architecture)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(workdir / "valid_acc.png", dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True, help="data, experiments and results go here")
    parser.add_argument("--corpus", type=Path, default=REPO / "demo" / "study", help="LibriSpeech-layout corpus root")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument("--nbpe", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    args = parser.parse_args(argv)
    args.workdir = args.workdir.resolve()
    args.corpus = args.corpus.resolve()
    (args.workdir / "logs").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    token_list = args.workdir / "data" / "en_token_list" / f"bpe_unigram{args.nbpe}" / "tokens.txt"
    if not token_list.exists():
        print("stages 1-10 (data, tokenizer, shapes)", flush=True)
        recipe(args.workdir, args.corpus, args.nbpe, 2, args.workdir / "logs" / "prepare.log",
               "--asr_config", str(BASE_CONFIG), "--stop_stage", "10")
    args.vocab_size = len(token_list.read_text(encoding="utf-8").splitlines())
    base = yaml.safe_load(BASE_CONFIG.read_text(encoding="utf-8"))
    configs = study_configs(base, args.epochs, args.vocab_size, args.workdir / "conf")

    runs = [(s, seed) for seed in args.seeds for s in args.settings]
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_one, args, s, seed, *configs[s]) for s, seed in runs]
        rows = [f.result() for f in futures]
    command = " ".join(["bench/trend_study.py", *(argv if argv is not None else sys.argv[1:])])
    write_outputs(rows, args.workdir, command)
    print((args.workdir / "study.md").read_text(encoding="utf-8"))
    print(f"wrote {args.workdir}/study.csv, study.md, valid_acc.png in {(time.perf_counter() - start) / 60:.0f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
