"""Compress a trained ASR checkpoint to a rank schedule by truncated SVD of each weight.

The dense (or differently factorized) model's config and weights go in; a config that names the
low-rank encoder/decoder with the new ``lowrank:`` blocks and a state dict whose factors are the
best rank-r approximations (``U = Û√Σ``, ``Vᵀ = √Σ V̂ᵀ``) come out. ESPnet's ``Speech2Text``
loads the result like any other model.
"""
import argparse
import copy
import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import yaml

from espnet_lrsms.fileio import load_weights_only, replaced_on_success, write_config_yaml
from espnet_lrsms.lowrank import FactorizedLinear, truncated_svd_factors
from espnet_lrsms.nets.espnet_names import LOWRANK_COUNTERPARTS

logger = logging.getLogger(__name__)

CONFIG_NAME, MODEL_NAME = "config.yaml", "model.pth"  # what compress_checkpoint writes to --output_dir


def lowrank_config(dense_config: dict, schedules: Dict[str, dict]) -> dict:
    """``dense_config`` with ``<part>: lowrank_*`` and ``<part>_conf.lowrank`` from ``schedules``.

    Args:
        dense_config: an ESPnet training config (as written to ``exp/*/config.yaml``).
        schedules: part ("encoder" | "decoder") → a ``lowrank:`` mapping.
    """
    config = copy.deepcopy(dense_config)
    for part, schedule in schedules.items():
        name = config.get(part)
        if name not in LOWRANK_COUNTERPARTS[part] and name not in LOWRANK_COUNTERPARTS[part].values():
            raise ValueError(
                f"{part}: {name!r} has no low-rank counterpart; supported: {sorted(LOWRANK_COUNTERPARTS[part])}"
            )
        config[part] = LOWRANK_COUNTERPARTS[part].get(name, name)
        config.setdefault(f"{part}_conf", {})
        config[f"{part}_conf"] = dict(config[f"{part}_conf"] or {}, lowrank=schedule)
    return config


def source_weight(state: Dict[str, torch.Tensor], layer_name: str) -> torch.Tensor:
    """The matrix a layer applies in ``state``: its dense ``weight`` or its ``u @ vt``."""
    if f"{layer_name}.weight" in state:
        return state[f"{layer_name}.weight"]
    if f"{layer_name}.u" in state:
        return state[f"{layer_name}.u"] @ state[f"{layer_name}.vt"]
    raise KeyError(f"the checkpoint has neither {layer_name}.weight nor {layer_name}.u/.vt")


@torch.no_grad()
def compress_state_dict(
    state: Dict[str, torch.Tensor], layers: Dict[str, FactorizedLinear]
) -> Tuple[Dict[str, torch.Tensor], List[dict]]:
    """Replace the weights of ``layers`` (name → target layer) by truncated-SVD factors.

    Returns the new state dict and one report row per layer (rank, weights before/after, relative
    Frobenius error of the approximation).
    """
    new_state = {
        k: v
        for k, v in state.items()
        if k.rpartition(".")[0] not in layers or k.rpartition(".")[2] == "bias"
    }
    report = []
    for name, layer in layers.items():
        weight = source_weight(state, name)
        u, vt = truncated_svd_factors(weight, layer.rank)
        new_state[f"{name}.u"], new_state[f"{name}.vt"] = u, vt
        error = torch.linalg.norm(weight - u @ vt) / torch.linalg.norm(weight).clamp(min=1e-12)
        report.append(
            {
                "layer": name,
                "shape": f"{layer.out_features}x{layer.in_features}",
                "rank": layer.rank,
                "weights_before": weight.numel(),
                "weights_after": layer.num_weights,
                "relative_error": float(error),
            }
        )
    return new_state, report


def same_directory(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one directory, through symlinks and relative paths."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def compress_checkpoint(
    asr_train_config: Path,
    asr_model_file: Path,
    schedules: Dict[str, dict],
    output_dir: Path,
    schedules_from: Optional[Path] = None,
) -> List[dict]:
    """Write ``output_dir/config.yaml`` and ``output_dir/model.pth`` (compressed); return the report.

    Refused before anything is written: an ``output_dir`` that is the source experiment's directory or
    already holds a ``config.yaml`` or ``model.pth`` (no experiment is overwritten), and ``schedules``
    (read from ``schedules_from``) that factorize no layer (every α null).
    """
    from espnet_lrsms.asr.task import LowRankASRTask  # here: importing ESPnet's task takes seconds

    output_dir = Path(output_dir)
    for option, source in (("--asr_train_config", asr_train_config), ("--asr_model_file", asr_model_file)):
        if same_directory(output_dir, Path(source).parent):
            raise ValueError(
                f"--output_dir {output_dir}: the directory of {option} {source}; writing config.yaml and "
                "model.pth there would overwrite the source experiment: choose another directory"
            )
    for name in (CONFIG_NAME, MODEL_NAME):
        if (output_dir / name).exists() or (output_dir / name).is_symlink():
            raise ValueError(
                f"--output_dir {output_dir}: already holds {name} (another experiment's?), which is not "
                "overwritten: choose a new or empty directory"
            )
    with open(asr_train_config, encoding="utf-8") as f:
        config = lowrank_config(yaml.safe_load(f), schedules)
    with torch.device("meta"):  # structure only: the weights come from the checkpoint
        model = LowRankASRTask.build_model(argparse.Namespace(**config))
    layers = {n: m for n, m in model.named_modules() if isinstance(m, FactorizedLinear)}
    if not layers:
        raise ValueError(
            f"--lowrank_from {schedules_from}: its lowrank: blocks {schedules} factorize no layer "
            "(give mhsa and/or ffn an α, e.g. mhsa: 0.25)"
        )
    state = load_weights_only(asr_model_file)
    new_state, report = compress_state_dict(state, layers)
    model.load_state_dict(new_state, strict=True, assign=True)  # fails on any structural mismatch
    output_dir.mkdir(parents=True, exist_ok=True)
    config_path, model_path = output_dir / CONFIG_NAME, output_dir / MODEL_NAME
    with replaced_on_success(model_path) as tmp:
        torch.save(new_state, tmp)
    write_config_yaml(config_path, config)
    logger.info("wrote %s and %s", config_path, model_path)
    return report
