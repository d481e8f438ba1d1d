"""Rank schedules: which α each block of a sub-model gets, per module type.

The ``lowrank:`` mapping of an encoder or decoder config reads::

    lowrank:
        mhsa: [0.1, 0.2]   # α | [α_i, α_f] | one α per block | {per_block: [...]} | null
        ffn: [0.2, 0.5]
        init: svd          # svd | kaiming | kaiming_traditional
        keep_dense_above_break_even: false
        frobenius_decay: 0.0   # λ of Frobenius decay on U·Vᵀ (Khodak et al., 2021); 0: off

* a single number α: every block gets α (uniform layer-wise rank);
* ``[α_i, α_f]``: linear layer-wise rank, LR-SMS Eq. (2), ``α_b = α_i + b·(α_f − α_i)/B`` with the
  block index ``b = 0 … B−1`` (so the last block gets ``α_i + (B−1)/B·(α_f − α_i)``);
* a list of B values (B ≠ 2), or ``{per_block: [...]}`` for any B: explicit per-block α; an entry
  may be null to keep that block dense;
* null (or the key left out): the module type stays dense.

A layer of shape m × n gets rank ``r = round(α·min(m, n))`` (halves round up), at least 1.

``frobenius_decay: λ`` replaces the optimizer's weight decay of the factors ``U`` and ``Vᵀ`` (λ·(‖U‖²_F +
‖Vᵀ‖²_F)/2, which penalises the factorization as much as the matrix) by decay of the product,
λ·‖U·Vᵀ‖²_F/2, applied decoupled as AdamW applies its own (:mod:`espnet_lrsms.train.frobenius_decay`).

Pure Python: nothing here imports ESPnet.
"""
import math
from dataclasses import dataclass
from numbers import Real
from typing import Any, List, Mapping, Optional, Tuple, Union

from espnet_lrsms.lowrank.factorized_linear import INIT_SCHEMES

MODULE_TYPES = ("mhsa", "ffn")

AlphaSpec = Union[None, float, Tuple[float, float], Tuple[Optional[float], ...]]


class LowRankConfigError(ValueError):
    """A ``lowrank:`` value that cannot describe a rank schedule; the message names key and value."""


def _check_alpha(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise LowRankConfigError(f"{where}: α must be a number in (0, 1], got {value!r}")
    if not 0 < value <= 1:
        raise LowRankConfigError(f"{where}: α must be in (0, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class AlphaSchedule:
    """The α of one module type across the blocks of one sub-model.

    ``kind`` is ``"dense"``, ``"uniform"``, ``"linear"`` or ``"per_block"``; ``values`` holds
    (), (α,), (α_i, α_f) or one α (or None) per block.
    """

    kind: str
    values: Tuple[Optional[float], ...] = ()

    @classmethod
    def parse(cls, spec: Any, where: str) -> "AlphaSchedule":
        if spec is None:
            return cls("dense")
        if isinstance(spec, Mapping):
            if set(spec) != {"per_block"}:
                raise LowRankConfigError(
                    f"{where}: a mapping must be {{per_block: [α, ...]}}, got keys {sorted(spec)}"
                )
            return cls._per_block(spec["per_block"], f"{where}.per_block")
        if isinstance(spec, (list, tuple)):
            if len(spec) == 2 and all(v is not None for v in spec):
                lo = _check_alpha(spec[0], f"{where}[0] (α_i)")
                hi = _check_alpha(spec[1], f"{where}[1] (α_f)")
                return cls("linear", (lo, hi))
            return cls._per_block(spec, where)
        return cls("uniform", (_check_alpha(spec, where),))

    @classmethod
    def _per_block(cls, values: Any, where: str) -> "AlphaSchedule":
        if not isinstance(values, (list, tuple)) or len(values) == 0:
            raise LowRankConfigError(f"{where}: expected a non-empty list of α, got {values!r}")
        checked = tuple(
            None if v is None else _check_alpha(v, f"{where}[{i}]") for i, v in enumerate(values)
        )
        return cls("per_block", checked)

    def alphas(self, num_blocks: int, where: str = "lowrank") -> List[Optional[float]]:
        """α of blocks 0 … num_blocks−1 (None: dense)."""
        if self.kind == "dense":
            return [None] * num_blocks
        if self.kind == "uniform":
            return [self.values[0]] * num_blocks
        if self.kind == "linear":
            lo, hi = self.values
            return [lo + b * (hi - lo) / num_blocks for b in range(num_blocks)]
        if len(self.values) != num_blocks:
            raise LowRankConfigError(
                f"{where}: a per-block list needs one α per block ({num_blocks}), "
                f"got {len(self.values)} values {list(self.values)}; "
                "write [α_i, α_f] for a linear schedule"
            )
        return list(self.values)


@dataclass(frozen=True)
class LowRankConfig:
    """A sub-model's ``lowrank:`` mapping, validated."""

    mhsa: AlphaSchedule = AlphaSchedule("dense")
    ffn: AlphaSchedule = AlphaSchedule("dense")
    init: str = "svd"
    keep_dense_above_break_even: bool = False
    frobenius_decay: float = 0.0

    KEYS = ("mhsa", "ffn", "init", "keep_dense_above_break_even", "frobenius_decay")

    @classmethod
    def from_dict(cls, conf: Optional[Mapping[str, Any]], where: str = "lowrank") -> "LowRankConfig":
        """Validate a YAML mapping; ``None`` or ``{}`` means fully dense."""
        if conf is None:
            return cls()
        if isinstance(conf, LowRankConfig):
            return conf
        if not isinstance(conf, Mapping):
            raise LowRankConfigError(f"{where}: expected a mapping with keys {cls.KEYS}, got {conf!r}")
        unknown = sorted(set(conf) - set(cls.KEYS))
        if unknown:
            raise LowRankConfigError(
                f"{where}: unknown key(s) {unknown}; known keys are {list(cls.KEYS)}"
            )
        init = conf.get("init", "svd")
        if init not in INIT_SCHEMES:
            raise LowRankConfigError(f"{where}.init: unknown init {init!r}; choose one of {list(INIT_SCHEMES)}")
        keep = conf.get("keep_dense_above_break_even", False)
        if not isinstance(keep, bool):
            raise LowRankConfigError(f"{where}.keep_dense_above_break_even: expected true/false, got {keep!r}")
        decay = conf.get("frobenius_decay", 0.0)
        if isinstance(decay, bool) or not isinstance(decay, Real) or not 0 <= decay < math.inf:
            raise LowRankConfigError(f"{where}.frobenius_decay: expected a number >= 0, got {decay!r}")
        return cls(
            mhsa=AlphaSchedule.parse(conf.get("mhsa"), f"{where}.mhsa"),
            ffn=AlphaSchedule.parse(conf.get("ffn"), f"{where}.ffn"),
            init=init,
            keep_dense_above_break_even=keep,
            frobenius_decay=float(decay),
        )

    def schedule(self, module_type: str) -> AlphaSchedule:
        if module_type not in MODULE_TYPES:
            raise KeyError(f"unknown module type {module_type!r}; known: {MODULE_TYPES}")
        return getattr(self, module_type)

    @property
    def is_dense(self) -> bool:
        return self.mhsa.kind == "dense" and self.ffn.kind == "dense"


def rank_for(alpha: float, in_features: int, out_features: int) -> int:
    """``r = round(α·min(m, n))`` with halves rounded up, at least 1."""
    return max(1, int(math.floor(alpha * min(in_features, out_features) + 0.5)))

