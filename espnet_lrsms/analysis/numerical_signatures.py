"""Numerical signatures of the blocks of a trained model (Zhou, Guliani et al., ICASSP 2022).

Definition. For module m (a weight matrix inside a block, e.g. ``self_attn.linear_q`` or
``conv_module.depthwise_conv``) of sub-model s in block l, with W(0) the initial and W(t) the trained
weight::

    signature(s, m, l) = ‖W^{m,l}(t) − W^{m,l}(0)‖_F / max_{l'} ‖W^{m,l'}(t) − W^{m,l'}(0)‖_F

so each module's signature lies in [0, 1] across the blocks of its sub-model and is 1.0 in the block
that moved most (0 for every block if the module never moved). A factorized layer's W is its
product U·Vᵀ; a convolution kernel is taken as is (the Frobenius norm ignores the shape). Layers
outside the block stacks (front end, embeddings, CTC) are left out. Blocks that change least are the
candidates for "ambient" layers, those that change most for "critical" ones.

W(0) is ``<exp_dir>/0epoch.pth``, which training through ``espnet_lrsms.bin.asr_train`` writes before
the first update (:class:`espnet_lrsms.asr.task.InitialStateTrainer`).
"""
import math
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

import torch

from espnet_lrsms.analysis.weights import (
    epoch_checkpoints,
    epoch_of,
    iter_weight_matrices,
    load_state_dict,
    write_rows_csv,
)
from espnet_lrsms.fileio import save_figure

INITIAL_CHECKPOINT = "0epoch.pth"
CSV_FIELDS = ("submodel", "module", "module_type", "block", "num_blocks", "change", "relative_change", "signature")


@torch.no_grad()
def weight_changes(initial: Mapping[str, torch.Tensor], current: Mapping[str, torch.Tensor]) -> List[dict]:
    """One row per block weight: absolute ‖W(t) − W(0)‖_F and relative change ‖W(t) − W(0)‖_F / ‖W(0)‖_F,
    with the per-module normalised ``signature`` (see the module docstring)."""
    before = {w.layer: w for w in iter_weight_matrices(initial) if w.where.block is not None}
    after = {w.layer: w for w in iter_weight_matrices(current) if w.where.block is not None}
    if before.keys() != after.keys():
        only_0, only_t = sorted(before.keys() - after.keys()), sorted(after.keys() - before.keys())
        raise ValueError(
            "the initial and trained checkpoints hold different layers (another model?): "
            f"only initial {only_0[:4]}{' ...' if len(only_0) > 4 else ''}, "
            f"only trained {only_t[:4]}{' ...' if len(only_t) > 4 else ''}"
        )
    num_blocks: Dict[str, int] = defaultdict(int)
    for w in after.values():
        num_blocks[w.where.submodel] = max(num_blocks[w.where.submodel], w.where.block + 1)
    rows = []
    for layer, w_t in after.items():  # state-dict order: modules in the order the model holds them
        w_0 = before[layer]
        if w_0.matrix.shape != w_t.matrix.shape:
            raise ValueError(f"{layer}: shape {tuple(w_0.matrix.shape)} at the start, {tuple(w_t.matrix.shape)} now")
        a, b = w_t.matrix.to(torch.float64), w_0.matrix.to(torch.float64)
        change = float(torch.linalg.norm(a - b))
        norm_0 = float(torch.linalg.norm(b))
        rows.append(
            {
                "submodel": w_t.where.submodel,
                "module": w_t.where.module,
                "module_type": w_t.where.module_type,
                "block": w_t.where.block,
                "num_blocks": num_blocks[w_t.where.submodel],
                "change": change,
                "relative_change": change / norm_0 if norm_0 > 0 else math.nan,
            }
        )
    peak: Dict[tuple, float] = defaultdict(float)
    for r in rows:
        peak[(r["submodel"], r["module"])] = max(peak[(r["submodel"], r["module"])], r["change"])
    for r in rows:
        top = peak[(r["submodel"], r["module"])]
        r["signature"] = r["change"] / top if top > 0 else 0.0
    return rows


def resolve_checkpoint(exp_dir: Path, checkpoint: Optional[Union[str, Path]]) -> Path:
    """``checkpoint`` as given, or relative to ``exp_dir``; by default the last ``<N>epoch.pth`` (N ≥ 1)."""
    if checkpoint is None:
        trained = [p for p in epoch_checkpoints(exp_dir) if epoch_of(p) != 0]
        if not trained:
            raise FileNotFoundError(f"{exp_dir}: no trained <N>epoch.pth (N >= 1); pass --checkpoint")
        return trained[-1]
    path = Path(checkpoint)
    if not path.is_file() and (exp_dir / path).is_file():
        path = exp_dir / path
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint: {checkpoint} (nor {exp_dir / checkpoint})")
    return path


def numerical_signatures(
    exp_dir: Union[str, Path],
    checkpoint: Optional[Union[str, Path]] = None,
    initial: Optional[Union[str, Path]] = None,
) -> tuple:
    """Rows of :func:`weight_changes` for an ESPnet experiment; returns (rows, checkpoint path, initial path)."""
    exp_dir = Path(exp_dir)
    initial = Path(initial) if initial is not None else exp_dir / INITIAL_CHECKPOINT
    if not initial.is_file():
        raise FileNotFoundError(
            f"no initial weights {initial}: train with python -m espnet_lrsms.bin.asr_train (it saves "
            f"{INITIAL_CHECKPOINT} before the first update) or pass the initial state dict"
        )
    path = resolve_checkpoint(exp_dir, checkpoint)
    return weight_changes(load_state_dict(initial), load_state_dict(path)), path, initial


def write_csv(rows: List[dict], path: Union[str, Path]) -> Path:
    """The rows as CSV (columns ``CSV_FIELDS``), written to a temporary name then renamed."""
    return write_rows_csv(rows, CSV_FIELDS, path)


def plot_heatmap(rows: List[dict], path: Union[str, Path], title: str = "") -> Path:
    """Heat map of the signatures: modules (rows) × blocks (columns), a panel per sub-model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    submodels = [s for s in ("encoder", "decoder", "frontend", "other") if any(r["submodel"] == s for r in rows)]
    panels = []
    for submodel in submodels:
        mine = [r for r in rows if r["submodel"] == submodel]
        modules = list(dict.fromkeys(r["module"] for r in mine))  # model order
        num_blocks = mine[0]["num_blocks"]
        grid = np.full((len(modules), num_blocks), np.nan)
        for r in mine:
            grid[modules.index(r["module"]), r["block"]] = r["signature"]
        panels.append((submodel, modules, grid))
    heights = [max(len(modules), 2) for _, modules, _ in panels]
    widest = max(grid.shape[1] for _, _, grid in panels)
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(max(6.0, 3.5 + 0.55 * widest), 1.3 + 0.32 * sum(heights) + 0.7 * len(panels)),
        squeeze=False, gridspec_kw={"height_ratios": heights},
    )
    image = None
    for ax, (submodel, modules, grid) in zip(axes[:, 0], panels):
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto", interpolation="nearest")
        ax.set_yticks(range(len(modules)))
        ax.set_yticklabels(modules, fontsize=8)
        ax.set_xticks(range(grid.shape[1]))
        ax.set_xticklabels([str(b) for b in range(grid.shape[1])], fontsize=8)
        ax.set_xlabel(f"{submodel} block l (0 = input side)", fontsize=9)
        ax.set_title(f"{submodel}", fontsize=10)
        if grid.size <= 400:
            for (i, j), value in np.ndenumerate(grid):
                if not np.isnan(value):
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                            color="black" if value > 0.6 else "white")
    cbar = fig.colorbar(image, ax=axes[:, 0].tolist(), fraction=0.03, pad=0.02)
    cbar.set_label(r"$\Vert W(t) - W(0)\Vert_F$ / max over blocks", fontsize=9)
    heading = (r"Numerical signatures $\Vert W^{m,l}(t) - W^{m,l}(0)\Vert_F\ /\ "
               r"\max_{l'}\ \Vert W^{m,l'}(t) - W^{m,l'}(0)\Vert_F$ (module m, block l)")
    fig.suptitle(heading + (f"\n{title}" if title else ""), fontsize=10)
    path = save_figure(fig, path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
