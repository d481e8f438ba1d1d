"""Fit a rank schedule (``lowrank:`` blocks) to a trained model's spectra, optionally to a parameter budget.

1. Measure: the rank fraction (see :mod:`espnet_lrsms.analysis.rank_emergence`; default 95 % of the
   energy) of every MHSA and FFN linear matrix of the encoder and decoder blocks — exactly the
   matrices ``lowrank_conformer`` / ``lowrank_transformer`` factorize — and average them per block:
   f_0 … f_{B−1} for each (sub-model, module type).
2. Fit: least squares of f_b ≈ α_b = α_i + b·(α_f − α_i)/B over b = 0 … B−1 (the convention of
   :mod:`espnet_lrsms.lowrank.schedule`, LR-SMS Eq. 2), i.e. a straight line in t = b/B through
   (0, α_i) and (1, α_f). One block (B = 1) gives a uniform α = f_0. ``per_block=True`` keeps the
   measured f_b as an explicit ``{per_block: [...]}`` list instead.
3. Scale: every α is multiplied by one common factor c and clipped to [0.0001, 1] (α is rounded to
   four decimals, and the printed values are the ones counted). Without a budget c = 1; with a budget
   of P parameters, c is the largest factor (bisection) whose model — the config with the fitted
   ``lowrank:`` blocks, built through ``build_asr_model(..., device="meta")`` — has at most P parameters.

The parameter count of a schedule is a step function of c (ranks are integers), non-decreasing, so
the bisection finds the largest c below the budget to within 10⁻⁴ relative.
"""
import copy
import json
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch
import yaml

from espnet_lrsms.analysis.rank_emergence import check_threshold, count_for_threshold, describe_measure, singular_values
from espnet_lrsms.analysis.weights import iter_weight_matrices, load_state_dict
from espnet_lrsms.fileio import config_yaml, save_figure, write_config_yaml
from espnet_lrsms.lowrank.schedule import parse_schedule
from espnet_lrsms.nets.espnet_names import BLOCK_STACKS, LOWRANK_COUNTERPARTS, VOCABULARY_WEIGHTS
from espnet_lrsms.asr.compress_checkpoint import lowrank_config

logger = logging.getLogger(__name__)

FIT_SUBMODELS = ("encoder", "decoder")
FIT_MODULE_TYPES = ("mhsa", "ffn")
ALPHA_MIN = 1e-4
DECIMALS = 4


@dataclass
class ModuleFit:
    """Measured per-block fractions of one (sub-model, module type) and the fitted line."""

    submodel: str
    module_type: str
    fractions: List[float]  # mean rank fraction of block b = 0 … B−1
    alpha_i: float
    alpha_f: float

    @property
    def num_blocks(self) -> int:
        return len(self.fractions)

    def line(self) -> List[float]:
        """α_b of the fitted (unscaled, unclipped) line at b = 0 … B−1."""
        n = self.num_blocks
        return [self.alpha_i + b * (self.alpha_f - self.alpha_i) / n for b in range(n)]

    @property
    def rms(self) -> float:
        return math.sqrt(sum((a - f) ** 2 for a, f in zip(self.line(), self.fractions)) / self.num_blocks)


@dataclass
class ScheduleFit:
    fits: Dict[Tuple[str, str], ModuleFit]
    schedules: Dict[str, dict]  # sub-model -> lowrank mapping (scaled, clipped)
    multiplier: float
    num_params: int
    given_params: int  # the config as given (dense, or its own schedule)
    budget: Optional[int] = None
    per_block: bool = False
    threshold: float = 0.95
    measure: str = "energy"
    notes: List[str] = field(default_factory=list)


def fit_linear(fractions: List[float]) -> Tuple[float, float]:
    """Least-squares [α_i, α_f] of α_b = α_i + b·(α_f − α_i)/B to ``fractions`` (B = its length).

    With B = 1 the single value is returned twice (a uniform schedule).
    """
    num_blocks = len(fractions)
    if num_blocks == 0:
        raise ValueError("no blocks to fit")
    if num_blocks == 1:
        return float(fractions[0]), float(fractions[0])
    t = torch.arange(num_blocks, dtype=torch.float64) / num_blocks
    design = torch.stack([1 - t, t], dim=1)
    target = torch.tensor(fractions, dtype=torch.float64)[:, None]
    solution = torch.linalg.lstsq(design, target).solution[:, 0]
    return float(solution[0]), float(solution[1])


def measure_block_fractions(
    state: Mapping[str, torch.Tensor], threshold: float = 0.95, measure: str = "energy"
) -> Dict[Tuple[str, str], List[float]]:
    """Mean rank fraction per block of the MHSA/FFN linear matrices of encoder and decoder."""
    check_threshold(threshold, measure)
    per_block: Dict[Tuple[str, str], Dict[int, List[float]]] = {}
    for w in iter_weight_matrices(state):
        where = w.where
        if where.submodel not in FIT_SUBMODELS or where.block is None or where.module_type not in FIT_MODULE_TYPES:
            continue
        if not w.is_linear:  # e.g. positionwise_layer_type: conv1d (stays dense in the low-rank models)
            continue
        k = count_for_threshold(singular_values(w.matrix, w.source_dtype), threshold, measure)
        per_block.setdefault((where.submodel, where.module_type), {}).setdefault(where.block, []).append(
            k / min(w.matrix.shape)
        )
    result = {}
    for key, blocks in per_block.items():
        num_blocks = max(blocks) + 1
        missing = [b for b in range(num_blocks) if b not in blocks]
        if missing:
            raise ValueError(f"{key[0]} {key[1]}: the checkpoint has no such matrices in block(s) {missing}")
        result[key] = [sum(blocks[b]) / len(blocks[b]) for b in range(num_blocks)]
    return result


def scale_alpha(alpha: float, multiplier: float) -> float:
    return min(1.0, max(ALPHA_MIN, round(multiplier * alpha, DECIMALS)))


def build_schedules(
    fits: Dict[Tuple[str, str], ModuleFit],
    multiplier: float,
    per_block: bool = False,
    extra: Optional[Mapping[str, Mapping]] = None,
) -> Dict[str, dict]:
    """sub-model → ``lowrank:`` mapping with every α scaled by ``multiplier`` and clipped.

    ``extra`` (sub-model → mapping) adds other keys, e.g. ``init``, to each mapping.
    """
    schedules: Dict[str, dict] = {}
    for (submodel, mtype), fit in fits.items():
        if per_block:
            spec = {"per_block": [scale_alpha(f, multiplier) for f in fit.fractions]}
        elif fit.num_blocks == 1:
            spec = scale_alpha(fit.alpha_i, multiplier)
        else:
            spec = [scale_alpha(fit.alpha_i, multiplier), scale_alpha(fit.alpha_f, multiplier)]
        schedules.setdefault(submodel, {})[mtype] = spec
    for submodel, mapping in schedules.items():
        mapping.update((extra or {}).get(submodel, {}))
    return schedules


def count_parameters(config: Mapping, vocab_size: int, schedules: Optional[Dict[str, dict]] = None) -> Tuple[int, dict]:
    """Parameters of ``config`` (a training-config mapping) with ``schedules`` inserted.

    The config goes through a temporary YAML and ``build_asr_model(..., device="meta")``; returns the
    count and the number of blocks per sub-model of the built model.
    """
    from espnet_lrsms.asr.build import build_asr_model

    config = lowrank_config(config, schedules) if schedules else copy.deepcopy(dict(config))
    with tempfile.TemporaryDirectory(prefix="fit_rank_schedule_") as tmp:
        path = Path(tmp) / "config.yaml"
        write_config_yaml(path, config)
        factorize_logger = logging.getLogger("espnet_lrsms.lowrank.factorize")
        level = factorize_logger.level
        factorize_logger.setLevel(logging.ERROR)  # the break-even warning, once per bisection step
        try:
            model = build_asr_model(path, vocab_size=vocab_size, device="meta")
        finally:
            factorize_logger.setLevel(level)
    blocks = {}
    for submodel, stack in BLOCK_STACKS.items():
        part = getattr(model, submodel, None)
        if part is not None and hasattr(part, stack):
            blocks[submodel] = len(getattr(part, stack))
    return sum(p.numel() for p in model.parameters()), blocks


def search_multiplier(
    count: Callable[[float], int], budget: int, max_multiplier: float, rel_tol: float = 1e-4
) -> Tuple[float, int]:
    """The largest c in [0, max_multiplier] with count(c) ≤ budget (count non-decreasing), by bisection."""
    lowest = count(0.0)
    if lowest > budget:
        raise ValueError(
            f"a budget of {budget / 1e6:.3f} M parameters is below the smallest model this schedule can give "
            f"({lowest / 1e6:.3f} M, every factorized layer at rank 1)"
        )
    top = count(max_multiplier)
    if top <= budget:
        return max_multiplier, top
    lo, hi = 0.0, max_multiplier
    while hi - lo > rel_tol * max_multiplier:
        mid = (lo + hi) / 2
        if count(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return lo, count(lo)


def vocab_size_of(state: Mapping[str, torch.Tensor], config: Mapping, default: int) -> int:
    """Vocabulary size from the checkpoint's output layers, else the config's token list, else ``default``."""
    for key in VOCABULARY_WEIGHTS:
        if key in state and state[key].dim() == 2:
            return int(state[key].shape[0])
    tokens = config.get("token_list")
    if isinstance(tokens, list):
        return len(tokens)
    if isinstance(tokens, str) and Path(tokens).is_file():
        return sum(1 for line in Path(tokens).read_text(encoding="utf-8").splitlines() if line.strip())
    return default


def fit_rank_schedule(
    config: Union[str, Path, Mapping],
    checkpoint: Union[str, Path, Mapping[str, torch.Tensor]],
    budget_m: Optional[float] = None,
    threshold: float = 0.95,
    measure: str = "energy",
    per_block: bool = False,
    vocab_size: int = 5000,
) -> ScheduleFit:
    """Measure, fit, scale (see the module docstring). ``config`` is a training YAML (path or mapping)."""
    if not isinstance(config, Mapping):
        with open(config, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    config = dict(config)
    state = checkpoint if isinstance(checkpoint, Mapping) else load_state_dict(checkpoint)
    vocab = vocab_size_of(state, config, vocab_size)
    notes = []

    given_params, built_blocks = count_parameters(config, vocab)
    measured = measure_block_fractions(state, threshold, measure)
    fits: Dict[Tuple[str, str], ModuleFit] = {}
    order = lambda item: (FIT_SUBMODELS.index(item[0][0]), FIT_MODULE_TYPES.index(item[0][1]))  # noqa: E731
    for (submodel, mtype), fractions in sorted(measured.items(), key=order):
        name = config.get(submodel)
        if name not in LOWRANK_COUNTERPARTS[submodel] and name not in LOWRANK_COUNTERPARTS[submodel].values():
            notes.append(f"{submodel}: {name!r} has no low-rank counterpart; not fitted")
            continue
        if built_blocks.get(submodel) != len(fractions):
            raise ValueError(
                f"{submodel}: the checkpoint has {len(fractions)} blocks but the config builds "
                f"{built_blocks.get(submodel)}; pass the config the checkpoint was trained with"
            )
        alpha_i, alpha_f = fit_linear(fractions)
        fits[(submodel, mtype)] = ModuleFit(submodel, mtype, fractions, alpha_i, alpha_f)
    if not fits:
        raise ValueError("no encoder/decoder MHSA or FFN matrices to fit in the checkpoint")

    extra = {}
    for submodel in {s for s, _ in fits}:
        present = (config.get(f"{submodel}_conf") or {}).get("lowrank") or {}
        extra[submodel] = {"init": present.get("init", "svd")}
        if present.get("keep_dense_above_break_even"):
            extra[submodel]["keep_dense_above_break_even"] = True

    cache: Dict[str, int] = {}

    def count(multiplier: float) -> int:
        schedules = build_schedules(fits, multiplier, per_block, extra)
        key = json.dumps(schedules, sort_keys=True)
        if key not in cache:
            cache[key] = count_parameters(config, vocab, schedules)[0]
        return cache[key]

    budget = None
    if budget_m is None:
        multiplier = 1.0
        num_params = count(multiplier)
    else:
        budget = int(round(budget_m * 1e6))
        alphas = [a for fit in fits.values() for a in (fit.fractions if per_block else (fit.alpha_i, fit.alpha_f))]
        positive = [a for a in alphas if a > 0]
        max_multiplier = 1.0 / min(positive) if positive else 1.0
        multiplier, num_params = search_multiplier(count, budget, max(max_multiplier, 1.0))
    schedules = build_schedules(fits, multiplier, per_block, extra)
    return ScheduleFit(
        fits, schedules, multiplier, num_params, given_params, budget, per_block, threshold, measure, notes
    )


# ------------------------------------------------------------------------------------------ output
def fit_header(result: ScheduleFit, source: str = "") -> List[str]:
    """The comment lines that say how the schedule was fitted and what it counts."""
    lines = [
        f"rank schedule fitted to {source or 'the checkpoint'}: rank fraction of "
        f"{describe_measure(result.threshold, result.measure)}, mean per block",
    ]
    for (submodel, mtype), fit in result.fits.items():
        measured = " ".join(f"{f:.3f}" for f in fit.fractions)
        lines.append(
            f"  {submodel} {mtype} (B = {fit.num_blocks}): measured {measured}; "
            f"fit [a_i, a_f] = [{fit.alpha_i:.4f}, {fit.alpha_f:.4f}] (rms residual {fit.rms:.4f})"
        )
    how = "explicit per-block alphas" if result.per_block else "linear [a_i, a_f], a_b = a_i + b (a_f - a_i) / B"
    scale = (
        f"multiplier {result.multiplier:.4f} (bisection to a budget of {result.budget / 1e6:g} M)"
        if result.budget is not None
        else "multiplier 1 (no budget)"
    )
    lines.append(f"{how}; {scale}; alphas clipped to [{ALPHA_MIN:g}, 1]")
    lines.append(
        f"parameters: {result.num_params / 1e6:.2f} M ({result.num_params:,}); "
        f"the config as given: {result.given_params / 1e6:.2f} M"
    )
    lines += [f"note: {note}" for note in result.notes]
    names = ", ".join(f"{s}: {next(iter(LOWRANK_COUNTERPARTS[s].values()))}" for s in FIT_SUBMODELS if s in result.schedules)
    lines.append(f"with {names}")
    return lines


def format_yaml(result: ScheduleFit, source: str = "") -> str:
    """Ready-to-paste ``encoder_conf: lowrank:`` / ``decoder_conf: lowrank:`` blocks under
    :func:`fit_header`'s comments."""
    blocks = {f"{s}_conf": {"lowrank": result.schedules[s]} for s in FIT_SUBMODELS if s in result.schedules}
    return config_yaml(blocks, fit_header(result, source))


def config_with_schedules(config: Mapping, schedules: Dict[str, dict]) -> dict:
    """The full training config with the fitted ``lowrank:`` blocks (and low-rank class names), usable
    as ``--config`` of ``espnet_lrsms.bin.asr_train``."""
    from espnet_lrsms.train.build import training_options

    return training_options(lowrank_config(dict(config), schedules))


CSV_FIELDS = ("submodel", "module_type", "block", "num_blocks", "measured_fraction", "fitted_alpha", "scheduled_alpha")


def scheduled_alphas(spec, num_blocks: int) -> List[float]:
    """α_b, b = 0 … B−1, of one ``lowrank:`` entry, as training reads it (:func:`parse_schedule`)."""
    return parse_schedule(spec, "lowrank").alphas(num_blocks)


def fit_rows(result: ScheduleFit) -> List[dict]:
    """One CSV row per (sub-model, module type, block): the measured mean rank fraction, the fitted line
    (before the budget multiplier) and the α the printed schedule gives."""
    rows = []
    for (submodel, mtype), fit in result.fits.items():
        scheduled = scheduled_alphas(result.schedules[submodel][mtype], fit.num_blocks)
        for b, (measured, fitted, alpha) in enumerate(zip(fit.fractions, fit.line(), scheduled)):
            rows.append(dict(submodel=submodel, module_type=mtype, block=b, num_blocks=fit.num_blocks,
                             measured_fraction=round(measured, 6), fitted_alpha=round(fitted, 6),
                             scheduled_alpha=round(alpha, 6)))
    return rows


def plot_fit(result: ScheduleFit, path: Union[str, Path], title: str) -> Path:
    """A panel per sub-model: measured fractions (points), fitted line (dashed) and the schedule (solid)
    over b/B, a colour per module type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    submodels = list(dict.fromkeys(s for s, _ in result.fits))
    fig, axes = plt.subplots(1, len(submodels), figsize=(5.0 * len(submodels), 3.8), squeeze=False, sharey=True)
    colours = {"mhsa": "tab:blue", "ffn": "tab:orange"}
    for ax, submodel in zip(axes[0], submodels):
        for (sub, mtype), fit in result.fits.items():
            if sub != submodel:
                continue
            depth = [b / fit.num_blocks for b in range(fit.num_blocks)]
            colour = colours.get(mtype, "tab:gray")
            ax.plot(depth, fit.fractions, "o", color=colour, label=f"{mtype.upper()} measured")
            ax.plot(depth, fit.line(), "--", color=colour, label=f"{mtype.upper()} fitted")
            ax.plot(depth, scheduled_alphas(result.schedules[submodel][mtype], fit.num_blocks), "-", color=colour,
                    label=f"{mtype.upper()} schedule (×{result.multiplier:.3g})")
        ax.set_title(submodel)
        ax.set_xlabel("depth b / B")
        ax.set_xlim(-0.02, 1.0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("rank fraction / α")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path
