"""Rank emergence: how many singular values each weight matrix needs (LR-SMS Fig. 1 and Fig. 3).

Definition. For a weight matrix W ∈ ℝ^{m×n} with singular values σ_1 ≥ σ_2 ≥ … ≥ σ_p, p = min(m, n),
the *rank fraction* at threshold τ (default 0.95) is k / p, where k is the smallest number of leading
singular values that hold the fraction τ of the matrix:

* ``measure="energy"`` (default): Σ_{i≤k} σ_i² ≥ τ · Σ_i σ_i² (squared Frobenius norm; by Eckart–Young
  the best rank-k approximation then has relative squared error ≤ 1 − τ);
* ``measure="nuclear"``: Σ_{i≤k} σ_i ≥ τ · Σ_i σ_i (nuclear norm).
* ``measure="stable"``: k = ⌈Σ_i σ_i² / σ_1²⌉, the stable rank ‖W‖²_F / ‖W‖²_2 (Cuttlefish, Wang et al. 2023);
  τ does not enter.

Singular values at or below the numerical-rank tolerance max(m, n) · ε · σ_1 (ε of the dtype the
weight was stored in, as ``torch.linalg.matrix_rank``) count as zero, so that at τ = 1 the fraction is
the numerical rank over p. An all-zero matrix has fraction 0.

Which matrices: every weight of a checkpoint with two or more dimensions. A factorized layer
(``<layer>.u``, ``<layer>.vt``) is analysed as the product U·Vᵀ, so its fraction is relative to
min(m, n) of the product (it cannot exceed r / min(m, n)); a convolution kernel (out, in/groups, k)
is read as the matrix (out, in/groups · k), e.g. a depthwise kernel (C, 1, K) as C × K. Each matrix is
classified by sub-model, block b of B and module type (see :mod:`espnet_lrsms.analysis.weights`).

Plots (matplotlib, Agg): Fig. 1 style — mean rank fraction per module type over training epochs, one
panel per sub-model with blocks (shaded: min–max over the matrices); Fig. 3 style — mean rank fraction
per module type over depth b/B, one panel per sub-model, for one checkpoint.
"""
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

import torch

from espnet_lrsms.analysis.weights import (
    MODULE_TYPES,
    block_counts,
    epoch_checkpoints,
    epoch_of,
    iter_weight_matrices,
    load_state_dict,
    write_rows_csv,
)
from espnet_lrsms.fileio import save_figure

logger = logging.getLogger(__name__)

MEASURES = ("energy", "nuclear", "stable")
CSV_FIELDS = (
    "checkpoint", "epoch", "key", "submodel", "block", "num_blocks", "module_type", "shape", "rank_fraction",
    "rank", "min_dim", "factor_rank", "threshold", "measure",
)
# a relative slack on the threshold, so that e.g. 19 equal singular values of 20 reach 95 % despite rounding
_SLACK = 1e-9


def check_threshold(threshold: float, measure: str) -> None:
    if measure not in MEASURES:
        raise ValueError(f"measure: unknown {measure!r}; choose one of {list(MEASURES)}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")


@torch.no_grad()
def singular_values(matrix: torch.Tensor, source_dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """Singular values (float64, descending) with those below the numerical-rank tolerance set to 0."""
    m = matrix.detach().to(torch.float64)
    s = torch.linalg.svdvals(m)
    if s.numel() == 0 or float(s[0]) == 0.0:
        return torch.zeros_like(s)
    dtype = source_dtype if source_dtype is not None and source_dtype.is_floating_point else matrix.dtype
    eps = torch.finfo(dtype if dtype.is_floating_point else torch.float32).eps
    tol = max(m.shape) * eps * float(s[0])
    return torch.where(s > tol, s, torch.zeros_like(s))


def count_for_threshold(s: torch.Tensor, threshold: float = 0.95, measure: str = "energy") -> int:
    """The smallest k with Σ_{i≤k} f(σ_i) ≥ threshold · Σ_i f(σ_i), f(σ) = σ² (energy) or σ (nuclear);
    ``stable``: the stable rank ‖W‖²_F / ‖W‖²_2 = Σ σ_i² / σ_1² rounded up (Cuttlefish's choice of ranks;
    ``threshold`` does not enter)."""
    check_threshold(threshold, measure)
    if measure == "stable":
        if s.numel() == 0 or float(s[0]) == 0.0:
            return 0
        squares = s.to(torch.float64) ** 2
        return math.ceil(float(squares.sum() / squares[0]) * (1 - _SLACK))
    values = s.to(torch.float64) ** 2 if measure == "energy" else s.to(torch.float64)
    cumulative = torch.cumsum(values, 0)
    if cumulative.numel() == 0 or float(cumulative[-1]) == 0.0:
        return 0
    target = threshold * float(cumulative[-1]) * (1 - _SLACK)
    return int(torch.searchsorted(cumulative, torch.tensor([target], dtype=torch.float64)).item()) + 1


def rank_fraction(
    matrix: torch.Tensor,
    threshold: float = 0.95,
    measure: str = "energy",
    source_dtype: Optional[torch.dtype] = None,
) -> float:
    """k / min(m, n) for a 2-D ``matrix`` (see the module docstring)."""
    if matrix.dim() != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {tuple(matrix.shape)}")
    s = singular_values(matrix, source_dtype)
    return count_for_threshold(s, threshold, measure) / min(matrix.shape)


def analyse_state_dict(
    state: Dict[str, torch.Tensor],
    threshold: float = 0.95,
    measure: str = "energy",
    checkpoint: str = "",
    epoch: Optional[int] = None,
    device: Union[str, torch.device] = "cpu",
) -> List[dict]:
    """One row (``CSV_FIELDS``) per weight matrix of ``state``."""
    check_threshold(threshold, measure)
    matrices = list(iter_weight_matrices(state))
    counts = block_counts([w.where for w in matrices])
    rows = []
    for w in matrices:
        s = singular_values(w.matrix.to(device), w.source_dtype).cpu()
        k = count_for_threshold(s, threshold, measure)
        p = min(w.matrix.shape)
        rows.append(
            {
                "checkpoint": checkpoint,
                "epoch": "" if epoch is None else epoch,
                "key": w.key,
                "submodel": w.where.submodel,
                "block": "" if w.where.block is None else w.where.block,
                "num_blocks": counts.get(w.where.submodel, "") if w.where.block is not None else "",
                "module_type": w.where.module_type,
                "shape": f"{w.matrix.shape[0]}x{w.matrix.shape[1]}",
                "rank_fraction": k / p,
                "rank": k,
                "min_dim": p,
                "factor_rank": "" if w.factor_rank is None else w.factor_rank,
                "threshold": threshold,
                "measure": measure,
            }
        )
    return rows


def resolve_inputs(inputs: Sequence[Union[str, Path]]) -> List[Path]:
    """Checkpoint files as given; an experiment directory stands for its ``<N>epoch.pth`` files."""
    paths: List[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found = epoch_checkpoints(item)
            if not found:
                raise FileNotFoundError(f"{item}: no <N>epoch.pth checkpoints in this directory")
            paths.extend(found)
        elif item.is_file():
            paths.append(item)
        else:
            raise FileNotFoundError(f"no such checkpoint or experiment directory: {item}")
    return paths


def analyse_checkpoints(
    paths: Iterable[Union[str, Path]],
    threshold: float = 0.95,
    measure: str = "energy",
    device: Union[str, torch.device] = "cpu",
) -> List[dict]:
    rows = []
    for path in paths:
        path = Path(path)
        logger.info("analysing %s", path)
        rows += analyse_state_dict(
            load_state_dict(path), threshold, measure, checkpoint=str(path), epoch=epoch_of(path), device=device
        )
    return rows


def write_csv(rows: List[dict], path: Union[str, Path]) -> Path:
    """The rows as CSV (columns ``CSV_FIELDS``), written to a temporary name then renamed."""
    return write_rows_csv(rows, CSV_FIELDS, path)


# ------------------------------------------------------------------------------------------- plots
_COLORS = {"mhsa": "tab:blue", "ffn": "tab:orange", "conv": "tab:green", "other": "tab:gray"}
_YLABEL = "rank ratio (%)\n= singular values needed / min(m, n)"
_LABELS = {"mhsa": "MHSA", "ffn": "FFN", "conv": "conv module", "other": "other"}


def describe_measure(threshold: float, measure: str) -> str:
    """What a rank of ``measure`` counts, in words (plot titles, config headers)."""
    if measure == "stable":
        return "the stable rank (sum of s^2 / s_1^2, rounded up)"
    what = "energy (sum of s^2)" if measure == "energy" else "nuclear norm (sum of s)"
    return f"singular values holding {100 * float(threshold):g} % of the {what}"


def _criterion(rows: List[dict]) -> str:
    return describe_measure(rows[0]["threshold"], rows[0]["measure"])


def _block_submodels(rows: List[dict]) -> List[str]:
    present = {r["submodel"] for r in rows if r["block"] != ""}
    return [s for s in ("encoder", "decoder", "frontend", "other") if s in present]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _stats(values: List[float]):
    return sum(values) / len(values), min(values), max(values)


def plot_over_epochs(rows: List[dict], path: Union[str, Path]) -> Optional[Path]:
    """Fig. 1 style: mean rank fraction (%) of each module type over epochs, a panel per sub-model.

    Uses the rows of ``<N>epoch.pth`` checkpoints inside blocks; returns None (no plot) when fewer
    than two epochs are present.
    """
    rows = [r for r in rows if r["epoch"] != "" and r["block"] != ""]
    epochs = sorted({int(r["epoch"]) for r in rows})
    if len(epochs) < 2:
        return None
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    submodels = _block_submodels(rows)
    fig, axes = plt.subplots(1, len(submodels), figsize=(5.2 * len(submodels), 4.0), squeeze=False, sharey=True)
    for ax, submodel in zip(axes[0], submodels):
        grouped = defaultdict(lambda: defaultdict(list))
        for r in rows:
            if r["submodel"] == submodel:
                grouped[r["module_type"]][int(r["epoch"])].append(100 * float(r["rank_fraction"]))
        for mtype in MODULE_TYPES:
            if mtype not in grouped:
                continue
            xs = sorted(grouped[mtype])
            mean, lo, hi = zip(*(_stats(grouped[mtype][e]) for e in xs))
            ax.plot(xs, mean, marker="o", ms=3, color=_COLORS[mtype], label=f"{_LABELS[mtype]} (mean)")
            ax.fill_between(xs, lo, hi, color=_COLORS[mtype], alpha=0.15, linewidth=0)
        num_blocks = next(r["num_blocks"] for r in rows if r["submodel"] == submodel)
        ax.set_title(f"{submodel} ({num_blocks} block{'s' if int(num_blocks) != 1 else ''})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, 105)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    axes[0][0].set_ylabel(_YLABEL)
    fig.suptitle(f"Rank emergence during training: {_criterion(rows)}\n"
                 "(line: mean over the matrices of a module type; band: min–max)", fontsize=10)
    return _save(fig, plt, path)


def plot_over_depth(rows: List[dict], path: Union[str, Path], title: str = "") -> Optional[Path]:
    """Fig. 3 style: mean rank fraction (%) per module type over depth b/B, a panel per sub-model.

    ``rows`` should come from one checkpoint. Returns None when no matrix sits inside a block.
    """
    rows = [r for r in rows if r["block"] != ""]
    if not rows:
        return None
    plt = _pyplot()
    submodels = _block_submodels(rows)
    fig, axes = plt.subplots(1, len(submodels), figsize=(5.2 * len(submodels), 4.0), squeeze=False, sharey=True)
    for ax, submodel in zip(axes[0], submodels):
        grouped = defaultdict(lambda: defaultdict(list))
        num_blocks = None
        for r in rows:
            if r["submodel"] == submodel:
                num_blocks = int(r["num_blocks"])
                grouped[r["module_type"]][int(r["block"])].append(100 * float(r["rank_fraction"]))
        for mtype in MODULE_TYPES:
            if mtype not in grouped:
                continue
            blocks = sorted(grouped[mtype])
            xs = [b / num_blocks for b in blocks]
            mean, lo, hi = zip(*(_stats(grouped[mtype][b]) for b in blocks))
            ax.plot(xs, mean, marker="o", ms=4, color=_COLORS[mtype], label=f"{_LABELS[mtype]} (mean)")
            ax.fill_between(xs, lo, hi, color=_COLORS[mtype], alpha=0.15, linewidth=0)
        ax.set_title(f"{submodel} (B = {num_blocks})")
        ax.set_xlabel("depth b / B (b = 0 … B−1, input side first)")
        ax.set_xlim(-0.03, 1.0)
        ax.set_ylim(0, 105)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    axes[0][0].set_ylabel(_YLABEL)
    heading = (f"Rank over depth: {_criterion(rows)}\n"
               "(line: mean over the matrices of a module type in block b; band: min–max)")
    fig.suptitle(heading + (f"\n{title}" if title else ""), fontsize=10)
    return _save(fig, plt, path)


def _save(fig, plt, path) -> Path:
    fig.tight_layout()
    path = save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path


def summary(rows: List[dict]) -> Dict[tuple, float]:
    """Mean rank fraction per (checkpoint, sub-model, module type)."""
    grouped = defaultdict(list)
    for r in rows:
        grouped[(r["checkpoint"], r["submodel"], r["module_type"])].append(float(r["rank_fraction"]))
    return {k: sum(v) / len(v) for k, v in grouped.items()}
