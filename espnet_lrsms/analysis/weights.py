"""Read the weight matrices of an ESPnet checkpoint and say where in the model each one sits.

Shared by the analysis tools (:mod:`~espnet_lrsms.analysis.rank_emergence`,
:mod:`~espnet_lrsms.analysis.fit_rank_schedule`, :mod:`~espnet_lrsms.analysis.numerical_signatures`). Works on the
state dict alone (no config, no model build), dense and factorized alike:

* a dense weight ``<layer>.weight`` with two or more dimensions is one matrix; a convolution kernel
  (out, in/groups, k…) is read as the 2-D matrix (out, in/groups·k…);
* a factorized layer (``<layer>.u`` of shape m × r and ``<layer>.vt`` of shape r × n) is the m × n
  product ``U·Vᵀ`` it applies.

Keys are classified by sub-model (``encoder``, ``decoder``, ``frontend``, ``other``), block index
b and block count B (``<sub>.encoders.<b>.…`` / ``<sub>.decoders.<b>.…``; B = the largest b + 1 seen
in the checkpoint), and module type: ``mhsa`` (below ``self_attn`` / ``src_attn``), ``ffn`` (below
``feed_forward`` / ``feed_forward_macaron``, i.e. ``w_1``/``w_2``), ``conv`` (below ``conv_module``:
pointwise and depthwise convolutions) and ``other`` (the names: :mod:`espnet_lrsms.nets.espnet_names`).
"""
import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Tuple, Union

import torch

from espnet_lrsms.fileio import load_weights_only, replaced_on_success
from espnet_lrsms.nets.espnet_names import BLOCK_MODULE_TYPES, BLOCK_STACKS

SUBMODELS = ("encoder", "decoder", "frontend")
MODULE_TYPES = ("mhsa", "ffn", "conv", "other")
_BLOCK = re.compile(rf"^(?P<sub>[^.]+)\.(?P<stack>{'|'.join(BLOCK_STACKS.values())})\.(?P<block>\d+)\.(?P<rest>.+)$")
_EPOCH = re.compile(r"^(?P<epoch>\d+)epoch\.pth$")


@dataclass(frozen=True)
class Where:
    """Where a layer sits: sub-model, block (None outside the block stack), module and module type."""

    submodel: str
    block: Optional[int]
    module: str  # the layer's name below its block, e.g. "self_attn.linear_q" (the full name outside blocks)
    module_type: str


def classify(layer: str) -> Where:
    """Classify a layer name (a state-dict key without ``.weight`` / ``.u`` / ``.vt``).

    >>> classify("encoder.encoders.3.self_attn.linear_q")
    Where(submodel='encoder', block=3, module='self_attn.linear_q', module_type='mhsa')
    """
    head = layer.split(".", 1)[0]
    submodel = head if head in SUBMODELS else "other"
    match = _BLOCK.match(layer)
    if match is None:
        return Where(submodel, None, layer, "other")
    rest = match["rest"]
    module_type = BLOCK_MODULE_TYPES.get(rest.split(".", 1)[0], "other")
    return Where(submodel, int(match["block"]), rest, module_type)


@dataclass
class WeightMatrix:
    """One weight matrix of a checkpoint, as the 2-D matrix its layer applies."""

    key: str  # "<layer>.weight" (dense) or "<layer>.u@vt" (factorized)
    layer: str
    matrix: torch.Tensor  # 2-D
    source_dtype: torch.dtype  # the dtype it was stored in (sets the numerical-rank tolerance)
    factor_rank: Optional[int]  # r of U·Vᵀ; None for a dense weight
    original_shape: Tuple[int, ...]
    where: Where

    @property
    def is_linear(self) -> bool:
        """A linear layer's matrix (dense 2-D weight or U·Vᵀ), not a reshaped convolution kernel."""
        return self.factor_rank is not None or len(self.original_shape) == 2


def iter_weight_matrices(state: Mapping[str, torch.Tensor]) -> Iterator[WeightMatrix]:
    """Every weight matrix of ``state`` in state-dict order (see the module docstring)."""
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        layer, _, leaf = key.rpartition(".")
        if leaf == "weight" and value.dim() >= 2:
            matrix = value.detach().reshape(value.shape[0], -1)
            yield WeightMatrix(key, layer, matrix, value.dtype, None, tuple(value.shape), classify(layer))
        elif leaf == "u" and value.dim() == 2 and f"{layer}.vt" in state:
            vt = state[f"{layer}.vt"]
            if vt.dim() != 2 or vt.shape[0] != value.shape[1]:
                raise ValueError(f"{layer}: u {tuple(value.shape)} and vt {tuple(vt.shape)} do not multiply")
            matrix = value.detach().double() @ vt.detach().double()
            yield WeightMatrix(
                f"{layer}.u@vt", layer, matrix, value.dtype, value.shape[1], tuple(matrix.shape), classify(layer)
            )


def block_counts(layers: List[Where]) -> Dict[str, int]:
    """B per sub-model: the largest block index seen + 1."""
    counts: Dict[str, int] = {}
    for where in layers:
        if where.block is not None:
            counts[where.submodel] = max(counts.get(where.submodel, 0), where.block + 1)
    return counts


def load_state_dict(path: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """A model state dict from an ESPnet ``*.pth``: ``<N>epoch.pth``, ``valid.*.best.pth``, an averaged
    model (``checkpoint.pth`` is refused: ESPnet pickles Python objects into it, and this package
    loads nothing that can run code; every epoch's weights are in ``<N>epoch.pth``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    state = load_weights_only(path)
    if isinstance(state, Mapping) and "model" in state and isinstance(state["model"], Mapping):
        state = state["model"]
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise ValueError(f"{path}: not a model state dict (got {type(state).__name__})")
    for key, value in state.items():  # an SVD of them would fail with LAPACK's bare LinAlgError
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            bad = int((~torch.isfinite(value)).sum())
            raise ValueError(f"{path}: {key} has {bad} of {value.numel()} values NaN or infinite "
                             "(did training diverge? take an earlier epoch's checkpoint)")
    return dict(state)


def epoch_of(path: Union[str, Path]) -> Optional[int]:
    """N for ``<N>epoch.pth``, also through a symlink such as ``valid.acc.best.pth -> 12epoch.pth``."""
    path = Path(path)
    for name in (path.name, path.resolve().name):
        match = _EPOCH.match(name)
        if match:
            return int(match["epoch"])
    return None


def epoch_checkpoints(exp_dir: Union[str, Path]) -> List[Path]:
    """The ``<N>epoch.pth`` files of an ESPnet experiment directory, by N (``0epoch.pth`` included).

    ESPnet's trainer deletes every epoch file that is neither among the ``keep_nbest_models`` best
    nor the latest; train with ``--keep_nbest_models`` ≥ ``max_epoch`` to keep them all.
    """
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"no such experiment directory: {exp_dir}")
    found = [(int(m["epoch"]), p) for p in exp_dir.iterdir() if (m := _EPOCH.match(p.name)) and p.is_file()]
    return [p for _, p in sorted(found)]


def write_rows_csv(rows: List[dict], fields, path: Union[str, Path]) -> Path:
    """Rows (dicts) as CSV with the columns ``fields``, written to a temporary name then renamed."""
    path = Path(path)
    with replaced_on_success(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)
    return path
