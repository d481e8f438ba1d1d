"""Full-rank warm-up, then low rank (Pufferfish / Cuttlefish style), as one ESPnet experiment.

The paper argues that layer-wise ranks need no full-rank warm-up; this is the baseline it argues against.
With a low-rank training config of N epochs and a warm-up of E < N epochs:

1. **Warm-up**: ESPnet trains the same architecture with every ``lowrank:`` block set to null (all linear
   layers dense) for E epochs (:func:`warmup_args`: ``--max_epoch E``, and the schedule's length pinned to
   the N epochs of the config, so the learning rate follows the schedule of the whole run).
2. **Switch** (:func:`switch_to_lowrank`): in the experiment directory, every dense weight that the config
   factorizes is truncated by SVD to its scheduled rank (the best rank-r approximation, as
   ``compress_checkpoint``), in ``checkpoint.pth`` and in each ``<n>epoch.pth``; the optimizer starts afresh
   (no moments of the dense weights carry over) at the learning rate the warm-up reached; the scheduler,
   the reporter (epochs, validation history) and the AMP scaler carry over. The dense files are kept in
   ``full_rank_warmup/`` with ``compression.csv``; ``full_rank_warmup/switched`` marks the switch done.
3. **Low rank**: ESPnet trains the low-rank config with ``--resume true`` from epoch E + 1 to N.

The result is an ordinary low-rank experiment directory: its model averaging (epoch files of both phases,
all low-rank now), decoding and packing work as for any other. Each step is safe to re-run: the warm-up
resumes, the switch reads the kept dense files and is skipped once marked.
"""
import argparse
import copy
import csv
import inspect
import logging
import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional

import torch
import yaml

from espnet_lrsms.fileio import load_weights_only, replaced_on_success, write_text_atomic
from espnet_lrsms.lowrank import FactorizedLinear
from espnet_lrsms.asr.compress_checkpoint import compress_state_dict
from espnet_lrsms.train.schedulers import SCHEDULERS

logger = logging.getLogger(__name__)

KEPT_DIR = "full_rank_warmup"
MARKER = "switched"
PARTS = ("encoder", "decoder")


def read_yaml(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def warmup_args(config: Dict, epochs: int) -> List[str]:
    """The arguments that turn an ESPnet training of the low-rank ``config`` into its warm-up phase.

    ``--max_epoch E``; ``--<part>_conf lowrank=null`` for each sub-model with a ``lowrank:`` block; for a
    scheduler of this package whose total length is left to ``max_epoch``, ``--scheduler_conf
    total_epochs=N`` with the config's N, so that the warm-up's learning rate is that of the whole run.
    """
    max_epoch = config.get("max_epoch")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"--warmup_full_rank_epochs: expected a whole number >= 1, got {epochs!r}")
    if not isinstance(max_epoch, int) or epochs >= max_epoch:
        raise ValueError(f"--warmup_full_rank_epochs {epochs}: must be below the config's max_epoch ({max_epoch})")
    parts = [p for p in PARTS if (config.get(f"{p}_conf") or {}).get("lowrank")]
    if not parts:
        raise ValueError("--warmup_full_rank_epochs: the config has no lowrank: block to warm up for")
    args = ["--max_epoch", str(epochs)]
    for part in parts:
        args += [f"--{part}_conf", "lowrank=null"]
    scheduler_conf = config.get("scheduler_conf") or {}
    scheduler = SCHEDULERS.get(config.get("scheduler"))
    if scheduler is not None and "total_epochs" in inspect.signature(scheduler).parameters:
        if scheduler_conf.get("total_epochs") is None and scheduler_conf.get("total_steps") is None:
            args += ["--scheduler_conf", f"total_epochs={max_epoch}"]
    return args


def lowrank_training_config(trained: Dict, lowrank: Dict) -> Dict:
    """The warm-up's full ESPnet config (``exp/*/config.yaml``) with the sub-models of the low-rank
    training config ``lowrank`` (their names and ``lowrank:`` blocks) and its ``max_epoch``."""
    config = copy.deepcopy(trained)
    for part in PARTS:
        if part in lowrank:
            config[part] = lowrank[part]
        conf = dict(config.get(f"{part}_conf") or {})
        conf["lowrank"] = (lowrank.get(f"{part}_conf") or {}).get("lowrank")
        config[f"{part}_conf"] = conf
    config["max_epoch"] = lowrank.get("max_epoch", config.get("max_epoch"))
    return config


def _keep(exp_dir: Path, kept: Path) -> List[Path]:
    """Copy the warm-up's weight files into ``kept`` (once: a re-run reads those copies); move away the
    averaged files ESPnet made at the warm-up's end (links to an epoch file, e.g. ``valid.acc.best.pth``,
    stay: they will point at its truncated version). Returns the kept epoch files."""
    kept.mkdir(exist_ok=True)
    for path in sorted(exp_dir.glob("*.pth")):
        target = kept / path.name
        if path.is_symlink() and Path(os.readlink(path)).name.endswith("epoch.pth"):
            continue  # valid.acc.best.pth -> 1epoch.pth, latest.pth, ...: point at the truncated epoch file
        if path.name == "checkpoint.pth" or path.name.endswith("epoch.pth"):
            if not target.exists():
                with replaced_on_success(target) as tmp:
                    shutil.copy2(path, tmp, follow_symlinks=True)
        else:  # valid.acc.ave.pth and the files it averages: dense, and made again at the end
            if target.exists() or target.is_symlink():
                target.unlink()
            shutil.move(str(path), str(target))
    if not (kept / "checkpoint.pth").is_file():
        raise FileNotFoundError(f"{exp_dir}/checkpoint.pth: no warm-up to switch from (train the warm-up first)")
    return sorted(p for p in kept.glob("*epoch.pth"))


def switch_to_lowrank(exp_dir, lowrank_config_file) -> Optional[Path]:
    """Turn the dense warm-up in ``exp_dir`` into the start of the low-rank run (see the module docstring).

    Returns the path of ``checkpoint.pth`` written, or None when the switch was done before.
    """
    from espnet_lrsms.asr.task import LowRankASRTask  # ESPnet's task: seconds to import

    exp_dir = Path(exp_dir)
    kept = exp_dir / KEPT_DIR
    if (kept / MARKER).is_file():
        logger.info("%s: switched to low rank already (%s)", exp_dir, kept / MARKER)
        return None
    config = lowrank_training_config(read_yaml(exp_dir / "config.yaml"), read_yaml(lowrank_config_file))
    args = argparse.Namespace(**config)
    with torch.device("meta"):  # structure only: the weights come from the warm-up
        model = LowRankASRTask.build_model(args)
    layers = {n: m for n, m in model.named_modules() if isinstance(m, FactorizedLinear)}
    if not layers:
        raise ValueError(f"{lowrank_config_file}: its lowrank: blocks factorize no layer")
    epoch_files = _keep(exp_dir, kept)

    # checkpoint.pth is this run's own file, written by ESPnet's trainer (which resumes from it the same way)
    checkpoint = torch.load(kept / "checkpoint.pth", map_location="cpu", weights_only=False)
    model_state, report = compress_state_dict(checkpoint["model"], layers)
    model.load_state_dict(model_state, strict=True, assign=True)
    optimizers = LowRankASRTask.build_model_optimizers(args, model)
    if len(optimizers) != len(checkpoint["optimizers"]):
        raise ValueError(f"{kept / 'checkpoint.pth'}: {len(checkpoint['optimizers'])} optimizer(s), expected {len(optimizers)}")
    optimizer_states = []
    for optimizer, dense_state in zip(optimizers, checkpoint["optimizers"]):
        reached = {k: v for k, v in dense_state["param_groups"][0].items() if k not in ("params", "weight_decay")}
        for group in optimizer.param_groups:
            group.update(reached)  # lr (and initial_lr) where the warm-up left them
        optimizer_states.append(optimizer.state_dict())
    schedulers = []
    for scheduler, optimizer in zip(checkpoint["schedulers"], optimizers):
        if scheduler is not None:  # one entry per parameter group (frobenius_decay adds one)
            scheduler = dict(scheduler)
            for key in ("base_lrs", "_last_lr"):
                if isinstance(scheduler.get(key), list) and scheduler[key]:
                    scheduler[key] = [scheduler[key][0]] * len(optimizer.param_groups)
        schedulers.append(scheduler)
    switched = dict(checkpoint, model=model_state, optimizers=optimizer_states, schedulers=schedulers)
    with replaced_on_success(exp_dir / "checkpoint.pth") as tmp:
        torch.save(switched, tmp)
    for path in epoch_files:  # the epochs of the warm-up, for ESPnet's model averaging at the end
        state, _ = compress_state_dict(load_weights_only(path), layers)
        with replaced_on_success(exp_dir / path.name) as tmp:
            torch.save(state, tmp)
    with replaced_on_success(kept / "compression.csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(report[0]))
            writer.writeheader()
            writer.writerows(report)
    epoch = checkpoint["reporter"]["epoch"] if isinstance(checkpoint.get("reporter"), dict) else "?"
    write_text_atomic(kept / MARKER, f"switched to low rank after epoch {epoch} with {lowrank_config_file}\n")
    errors = [row["relative_error"] for row in report]
    logger.info("%s: %d layers truncated to their ranks after epoch %s (relative error %.3f-%.3f); dense "
                "files in %s", exp_dir, len(report), epoch, min(errors), max(errors), kept)
    return exp_dir / "checkpoint.pth"
