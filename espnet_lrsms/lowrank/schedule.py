"""Rank schedules: which α each block of a sub-model gets, per module type.

The ``lowrank:`` mapping of an encoder or decoder config reads::

    lowrank:
        mhsa: [0.1, 0.2]   # α | [α_i, α_f] | one α per block | {per_block: [...]} | {kind: ..., ...} | null
        ffn: [0.2, 0.5]
        init: svd          # svd | kaiming | kaiming_traditional
        keep_dense_above_break_even: false
        frobenius_decay: 0.0   # λ of Frobenius decay on U·Vᵀ (Khodak et al., 2021); 0: off

* a single number α, or ``{kind: uniform, alpha: α}``: every block gets α (uniform layer-wise rank);
* ``[α_i, α_f]``, or ``{kind: linear, alpha_i: α_i, alpha_f: α_f}``: linear layer-wise rank, LR-SMS Eq. (2),
  ``α_b = α_i + b·(α_f − α_i)/B`` with the block index ``b = 0 … B−1`` (so the last block gets
  ``α_i + (B−1)/B·(α_f − α_i)``);
* a list of B values (B ≠ 2), ``{per_block: [...]}`` or ``{kind: per_block, values: [...]}`` for any B:
  explicit per-block α; an entry may be null to keep that block dense;
* null (or the key left out, or ``{kind: dense}``): the module type stays dense.

Each kind is one dataclass registered in :data:`SCHEDULES` (:func:`register_schedule`): its fields are the
keys of its explicit form, checked by :func:`espnet_lrsms.lowrank.options.read_options`, and its
``alphas(num_blocks)`` gives the α of every block. A layer of shape m × n gets rank ``r = round(α·min(m, n))``
(halves round up), at least 1.

``frobenius_decay: λ`` replaces the optimizer's weight decay of the factors ``U`` and ``Vᵀ`` (λ·(‖U‖²_F +
‖Vᵀ‖²_F)/2, which penalises the factorization as much as the matrix) by decay of the product,
λ·‖U·Vᵀ‖²_F/2, applied decoupled as AdamW applies its own (:mod:`espnet_lrsms.train.frobenius_decay`).

Pure Python: nothing here imports ESPnet.
"""
import math
from dataclasses import dataclass, is_dataclass
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Tuple, Type

from espnet_lrsms.lowrank.factorized_linear import INIT_SCHEMES
from espnet_lrsms.lowrank.options import OptionError, check_field, option, read_options

MODULE_TYPES = ("mhsa", "ffn")

# every α of a schedule: a rank fraction, r = round(α·min(m, n))
ALPHA = dict(low=0, high=1, open_low=True, noun="a rank fraction α")


class LowRankConfigError(OptionError):
    """A ``lowrank:`` value that cannot describe a rank schedule; the message names key and value."""


class AlphaSchedule:
    """The α of one module type across the blocks of one sub-model; a subclass per ``kind``."""

    kind: ClassVar[str]

    def alphas(self, num_blocks: int, where: str = "lowrank") -> List[Optional[float]]:
        """α of blocks 0 … num_blocks−1 (None: dense)."""
        raise NotImplementedError


SCHEDULES: Dict[str, Type[AlphaSchedule]] = {}


def register_schedule(cls: Type[AlphaSchedule]) -> Type[AlphaSchedule]:
    """Make a frozen dataclass subclass of :class:`AlphaSchedule` usable as ``{kind: <cls.kind>, ...}``."""
    if not (isinstance(cls, type) and issubclass(cls, AlphaSchedule) and is_dataclass(cls)):
        raise TypeError(f"{cls!r}: a rank schedule is a dataclass subclass of AlphaSchedule")
    if cls.kind in SCHEDULES:
        raise ValueError(f"rank schedule kind {cls.kind!r} is already registered ({SCHEDULES[cls.kind].__name__})")
    SCHEDULES[cls.kind] = cls
    return cls


@register_schedule
@dataclass(frozen=True)
class Dense(AlphaSchedule):
    """Every block stays dense (short form: null)."""

    kind: ClassVar[str] = "dense"

    def alphas(self, num_blocks: int, where: str = "lowrank") -> List[Optional[float]]:
        return [None] * num_blocks


@register_schedule
@dataclass(frozen=True)
class Uniform(AlphaSchedule):
    """Every block gets α (short form: a number)."""

    kind: ClassVar[str] = "uniform"
    alpha: float = option(help="the α of every block", **ALPHA)

    def alphas(self, num_blocks: int, where: str = "lowrank") -> List[Optional[float]]:
        return [self.alpha] * num_blocks


@register_schedule
@dataclass(frozen=True)
class Linear(AlphaSchedule):
    """LR-SMS Eq. (2): ``α_b = α_i + b·(α_f − α_i)/B``, b = 0 … B−1 (short form: ``[α_i, α_f]``)."""

    kind: ClassVar[str] = "linear"
    alpha_i: float = option(help="the α of block 0", **ALPHA)
    alpha_f: float = option(help="the α block B, one past the last, would get", **ALPHA)

    def alphas(self, num_blocks: int, where: str = "lowrank") -> List[Optional[float]]:
        lo, hi = self.alpha_i, self.alpha_f
        return [lo + b * (hi - lo) / num_blocks for b in range(num_blocks)]


@register_schedule
@dataclass(frozen=True)
class PerBlock(AlphaSchedule):
    """One α (or null: dense) per block (short forms: a list of B ≠ 2 values, ``{per_block: [...]}``)."""

    kind: ClassVar[str] = "per_block"
    values: Tuple[Optional[float], ...] = option(help="the α of each block, null for a dense block", **ALPHA)

    def alphas(self, num_blocks: int, where: str = "lowrank") -> List[Optional[float]]:
        if len(self.values) != num_blocks:
            raise LowRankConfigError(
                f"{where}: a per-block list needs one α per block ({num_blocks}), "
                f"got {len(self.values)} values {list(self.values)}; "
                "write [α_i, α_f] for a linear schedule"
            )
        return list(self.values)


def parse_schedule(spec: Any, where: str) -> AlphaSchedule:
    """A schedule from its YAML value: a short form (null, α, [α_i, α_f], a list, {per_block: [...]}) or
    the explicit ``{kind: <a registered kind>, <its fields>...}``."""
    if spec is None:
        return Dense()
    if isinstance(spec, AlphaSchedule):
        return spec
    if isinstance(spec, Mapping):
        if "kind" in spec:
            kind = check_field(_KindOnly, "kind", spec["kind"], f"{where}.kind", LowRankConfigError)
            rest = {k: v for k, v in spec.items() if k != "kind"}
            return read_options(SCHEDULES[kind], rest, where, LowRankConfigError, context=f" for kind {kind!r}")
        if set(spec) != {"per_block"}:
            raise LowRankConfigError(
                f"{where}: a mapping must be {{per_block: [α, ...]}} or {{kind: <one of {list(SCHEDULES)}>, ...}}, "
                f"got keys {sorted(spec, key=str)}"
            )
        return PerBlock(check_field(PerBlock, "values", spec["per_block"], f"{where}.per_block", LowRankConfigError))
    if isinstance(spec, (list, tuple)):
        if len(spec) == 2 and all(v is not None for v in spec):
            return Linear(
                check_field(Linear, "alpha_i", spec[0], f"{where}[0] (α_i)", LowRankConfigError),
                check_field(Linear, "alpha_f", spec[1], f"{where}[1] (α_f)", LowRankConfigError),
            )
        return PerBlock(check_field(PerBlock, "values", spec, where, LowRankConfigError))
    return Uniform(check_field(Uniform, "alpha", spec, where, LowRankConfigError))


@dataclass(frozen=True)
class _KindOnly:
    """The ``kind`` key of an explicit schedule; its choices are the kinds registered when it is read."""

    kind: str = option(help="the schedule's kind", choices=SCHEDULES.keys())


@dataclass(frozen=True)
class LowRankConfig:
    """A sub-model's ``lowrank:`` mapping, validated."""

    mhsa: AlphaSchedule = option(Dense(), help="the α schedule of the attention linears", parse=parse_schedule)
    ffn: AlphaSchedule = option(Dense(), help="the α schedule of the feed-forward linears", parse=parse_schedule)
    init: str = option("svd", help="how the factors start", choices=INIT_SCHEMES)
    keep_dense_above_break_even: bool = option(False, help="keep a layer dense whose rank saves no parameters")
    frobenius_decay: float = option(0.0, help="λ of Frobenius decay on U·Vᵀ; 0: off", low=0)

    @classmethod
    def from_dict(cls, conf: Optional[Mapping[str, Any]], where: str = "lowrank") -> "LowRankConfig":
        """Validate a YAML mapping; ``None`` or ``{}`` means fully dense."""
        if conf is None:
            return cls()
        if isinstance(conf, LowRankConfig):
            return conf
        return read_options(cls, conf, where, LowRankConfigError)

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

