"""The ``lora_conf:`` mapping of an LM adaptation config: which strategy, which layers, which ranks.

Four strategies (arXiv 2401.10447, Sec. 2), all on the linear layers named in ``target_modules``
(default: the attention projections ``linear_q/k/v/out`` and the feed-forward ``w_1``/``w_2`` of
every block of ESPnet's Transformer LM)::

    lora_conf:
        strategy: vanilla        # every adapted layer gets rank `rank`
        rank: 8
        lora_alpha: 16           # LoRA scaling lora_alpha / r (PEFT's name; `alpha` elsewhere is a rank fraction)

    lora_conf:
        strategy: dynamic        # AdaLoRA: SVD-form adapters, importance-based budget across layers
        init_rank: 12            # every layer starts at this rank ...
        rank: 8                  # ... and the total rank ends at rank x (number of adapted layers)
        tinit: 20                # steps at the initial budget
        tfinal: 20               # steps at the final budget (>= 1: the final allocation happens then)
        delta_t: 5               # re-allocate every delta_t steps in between (cubic budget schedule)
        beta1: 0.85              # smoothing of the sensitivity |p * dL/dp|
        beta2: 0.85              # smoothing of its uncertainty
        orth_reg_weight: 0.5     # weight of the orthogonality regulariser of P and Q
        total_step: null         # optimizer steps of the run (not more); null: counted from the data and max_epoch

    lora_conf:
        strategy: warmup         # high-rank warm-up: train at warmup_rank, then truncate B*A by SVD
        warmup_rank: 32
        rank: 8
        truncate_step: 100       # after this many optimizer steps

    lora_conf:
        strategy: mixed          # per-layer ranks from a rank schedule (espnet_lrsms.lowrank.schedule)
        ranks:
            mhsa: [0.0625, 0.25] # alpha | [alpha_i, alpha_f] | per-block list: r = round(alpha * min(m, n))
            ffn: 0.125

The scaling was called ``alpha`` before 0.2.0's one-wing layout; ``alpha`` in this package means the rank
fraction of a rank schedule (``r = round(alpha * min(m, n))``, as in ``ranks:`` above), so the scaling is
``lora_alpha``, PEFT's name. A ``lora_conf`` that still says ``alpha:`` (an experiment trained before) is read
as ``lora_alpha`` with a warning.

Pure Python: nothing here imports ESPnet or PEFT.
"""
import logging
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Dict, Mapping, Optional, Tuple

from espnet_lrsms.lowrank.schedule import AlphaSchedule, LowRankConfigError
from espnet_lrsms.nets.espnet_names import TRANSFORMER_LINEARS

STRATEGIES = ("vanilla", "dynamic", "warmup", "mixed")
# every linear of a Transformer LM block; their module types (TRANSFORMER_LINEARS) key the mixed-rank schedules
DEFAULT_TARGET_MODULES = tuple(TRANSFORMER_LINEARS)

logger = logging.getLogger(__name__)

_COMMON_KEYS = ("strategy", "lora_alpha", "dropout", "target_modules")
OLD_SCALING_KEY = "alpha"  # what lora_alpha was called before; read with a warning
_STRATEGY_KEYS = {
    "vanilla": ("rank",),
    "dynamic": ("rank", "init_rank", "tinit", "tfinal", "delta_t", "beta1", "beta2", "orth_reg_weight", "total_step"),
    "warmup": ("rank", "warmup_rank", "truncate_step"),
    "mixed": ("ranks",),
}


class LoRAConfigError(ValueError):
    """A ``lora_conf`` value that cannot describe an adaptation; the message names the key and value."""


def _int(conf: Mapping, key: str, where: str, default=None, minimum: int = 1) -> Optional[int]:
    value = conf.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise LoRAConfigError(f"{where}.{key}: expected an integer >= {minimum}, got {value!r}")
    return value


def _float(conf: Mapping, key: str, where: str, default: float, low: float, high: float, open_low=False, open_high=False) -> float:
    value = conf.get(key, default)
    ok = isinstance(value, Real) and not isinstance(value, bool)
    if ok:
        ok = (low < value if open_low else low <= value) and (value < high if open_high else value <= high)
    if not ok:
        lo, hi = ("(" if open_low else "[") + f"{low}", f"{high}" + (")" if open_high else "]")
        raise LoRAConfigError(f"{where}.{key}: expected a number in {lo}, {hi}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class LoRAConfig:
    """A validated ``lora_conf``; see the module docstring for the keys of each strategy."""

    strategy: str
    lora_alpha: float = 16.0
    dropout: float = 0.0
    target_modules: Tuple[str, ...] = DEFAULT_TARGET_MODULES
    rank: Optional[int] = None  # vanilla / warmup: the final rank of every layer; dynamic: target mean rank
    init_rank: Optional[int] = None  # dynamic
    tinit: int = 0
    tfinal: int = 1
    delta_t: int = 1
    beta1: float = 0.85
    beta2: float = 0.85
    orth_reg_weight: float = 0.5
    total_step: Optional[int] = None
    warmup_rank: Optional[int] = None  # warmup
    truncate_step: Optional[int] = None
    ranks: Dict[str, AlphaSchedule] = field(default_factory=dict)  # mixed: module type -> schedule

    @classmethod
    def from_dict(cls, conf: Any, where: str = "lora_conf") -> "LoRAConfig":
        if isinstance(conf, LoRAConfig):
            return conf
        if not isinstance(conf, Mapping):
            raise LoRAConfigError(f"{where}: expected a mapping with a 'strategy' key, got {conf!r}")
        strategy = conf.get("strategy")
        if strategy not in STRATEGIES:
            raise LoRAConfigError(f"{where}.strategy: expected one of {list(STRATEGIES)}, got {strategy!r}")
        if OLD_SCALING_KEY in conf:
            if "lora_alpha" in conf:
                raise LoRAConfigError(
                    f"{where}: both 'alpha' and 'lora_alpha' given; the LoRA scaling is 'lora_alpha' "
                    "('alpha' is its old name)"
                )
            logger.warning("%s.alpha is read as lora_alpha (the LoRA scaling's name now); rename it", where)
            conf = {("lora_alpha" if key == OLD_SCALING_KEY else key): value for key, value in conf.items()}
        allowed = _COMMON_KEYS + _STRATEGY_KEYS[strategy]
        unknown = sorted(set(conf) - set(allowed))
        if unknown:
            raise LoRAConfigError(f"{where}: unknown key(s) {unknown} for strategy {strategy!r}; known keys: {list(allowed)}")
        targets = conf.get("target_modules", list(DEFAULT_TARGET_MODULES))
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, (list, tuple)) or not targets or not all(isinstance(t, str) and t for t in targets):
            raise LoRAConfigError(f"{where}.target_modules: expected a non-empty list of module names, got {targets!r}")
        values = dict(
            strategy=strategy,
            lora_alpha=_float(conf, "lora_alpha", where, 16.0, 0.0, float("inf"), open_low=True, open_high=True),
            dropout=_float(conf, "dropout", where, 0.0, 0.0, 1.0, open_high=True),
            target_modules=tuple(targets),
        )
        if strategy in ("vanilla", "warmup", "dynamic"):
            rank = _int(conf, "rank", where)
            if rank is None:
                raise LoRAConfigError(f"{where}.rank: strategy {strategy!r} needs a rank (an integer >= 1)")
            values["rank"] = rank
        if strategy == "warmup":
            warmup_rank = _int(conf, "warmup_rank", where)
            truncate_step = _int(conf, "truncate_step", where)
            if warmup_rank is None or truncate_step is None:
                raise LoRAConfigError(f"{where}: strategy 'warmup' needs warmup_rank and truncate_step")
            if warmup_rank <= values["rank"]:
                raise LoRAConfigError(
                    f"{where}.warmup_rank: must be above rank ({values['rank']}) to warm up at a higher rank, got {warmup_rank}"
                )
            values.update(warmup_rank=warmup_rank, truncate_step=truncate_step)
        if strategy == "dynamic":
            init_rank = _int(conf, "init_rank", where)
            if init_rank is None:
                raise LoRAConfigError(f"{where}: strategy 'dynamic' needs init_rank (the rank every layer starts at)")
            if init_rank < values["rank"]:
                raise LoRAConfigError(f"{where}.init_rank: must be >= rank ({values['rank']}), got {init_rank}")
            values.update(
                init_rank=init_rank,
                tinit=_int(conf, "tinit", where, default=0, minimum=0),
                # the final allocation happens at step total_step - tfinal, which must be a step of the run
                tfinal=_int(conf, "tfinal", where, default=1, minimum=1),
                delta_t=_int(conf, "delta_t", where, default=1),
                beta1=_float(conf, "beta1", where, 0.85, 0.0, 1.0, open_low=True, open_high=True),
                beta2=_float(conf, "beta2", where, 0.85, 0.0, 1.0, open_low=True, open_high=True),
                orth_reg_weight=_float(conf, "orth_reg_weight", where, 0.5, 0.0, float("inf"), open_high=True),
                total_step=_int(conf, "total_step", where),
            )
        if strategy == "mixed":
            spec = conf.get("ranks")
            if not isinstance(spec, Mapping) or not spec:
                raise LoRAConfigError(
                    f"{where}.ranks: strategy 'mixed' needs a mapping module type -> alpha schedule, e.g. "
                    f"{{mhsa: [0.0625, 0.25], ffn: 0.125}}, got {spec!r}"
                )
            types = sorted(set(TRANSFORMER_LINEARS[t] for t in values["target_modules"] if t in TRANSFORMER_LINEARS))
            unknown_types = sorted(set(spec) - set(types))
            if unknown_types:
                raise LoRAConfigError(f"{where}.ranks: unknown module type(s) {unknown_types}; the targets give {types}")
            try:
                values["ranks"] = {k: AlphaSchedule.parse(v, f"{where}.ranks.{k}") for k, v in spec.items()}
            except LowRankConfigError as e:
                raise LoRAConfigError(str(e)) from None
            if any(s.kind == "dense" for s in values["ranks"].values()):
                raise LoRAConfigError(f"{where}.ranks: null is not a rank; leave the module type out of target_modules instead")
        return cls(**values)

    def initial_rank(self) -> Optional[int]:
        """The rank every layer starts at (None for mixed: per layer)."""
        return {"vanilla": self.rank, "warmup": self.warmup_rank, "dynamic": self.init_rank}.get(self.strategy)
