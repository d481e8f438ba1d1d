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
            mhsa: [0.0625, 0.25] # alpha | [alpha_i, alpha_f] | per-block list | {kind: ...}: r = round(alpha * min(m, n))
            ffn: 0.125

The scaling was called ``alpha`` before 0.2.0's one-wing layout; ``alpha`` in this package means the rank
fraction of a rank schedule (``r = round(alpha * min(m, n))``, as in ``ranks:`` above), so the scaling is
``lora_alpha``, PEFT's name. A ``lora_conf`` that still says ``alpha:`` (an experiment trained before) is read
as ``lora_alpha`` with a warning.

Each key is a field of :class:`LoRAConfig` with its type, range, help and strategies; one reader
(:func:`espnet_lrsms.lowrank.options.read_options`) checks them, and :meth:`LoRAConfig.check_together` what
ties two keys.

Pure Python: nothing here imports ESPnet or PEFT.
"""
import logging
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from espnet_lrsms.lowrank.options import check_field, option, option_fields, read_options
from espnet_lrsms.lowrank.schedule import AlphaSchedule, parse_schedule
from espnet_lrsms.nets.espnet_names import TRANSFORMER_LINEARS

STRATEGIES = ("vanilla", "dynamic", "warmup", "mixed")
# every linear of a Transformer LM block; their module types (TRANSFORMER_LINEARS) key the mixed-rank schedules
DEFAULT_TARGET_MODULES = tuple(TRANSFORMER_LINEARS)

logger = logging.getLogger(__name__)

OLD_SCALING_KEY = "alpha"  # what lora_alpha was called before; read with a warning


class LoRAConfigError(ValueError):
    """A ``lora_conf`` value that cannot describe an adaptation; the message names the key and value."""


def parse_ranks(value: Any, where: str) -> Dict[str, AlphaSchedule]:
    """``ranks:`` of strategy mixed: module type -> rank schedule (:func:`parse_schedule`), none dense."""
    if not isinstance(value, Mapping) or not value:
        raise LoRAConfigError(
            f"{where}: expected a mapping module type -> alpha schedule, e.g. {{mhsa: [0.0625, 0.25], ffn: 0.125}}, "
            f"got {value!r}"
        )
    ranks = {k: parse_schedule(v, f"{where}.{k}") for k, v in value.items()}
    if any(s.kind == "dense" for s in ranks.values()):
        raise LoRAConfigError(f"{where}: null is not a rank; leave the module type out of target_modules instead")
    return ranks


def _for(*strategies: str) -> Dict[str, Tuple[str, ...]]:
    return dict(strategies=strategies)


@dataclass(frozen=True)
class LoRAConfig:
    """A validated ``lora_conf``; see the module docstring for the keys of each strategy. A field with
    ``strategies`` in its metadata is a key of those strategies only."""

    strategy: str = option(help="how the adapters' ranks are chosen", choices=STRATEGIES)
    lora_alpha: float = option(16.0, help="LoRA scaling lora_alpha / r", low=0, open_low=True)
    dropout: float = option(0.0, help="dropout before the adapters", low=0, high=1, open_high=True)
    target_modules: Tuple[str, ...] = option(DEFAULT_TARGET_MODULES, help="the linears to adapt", noun="a module name")
    rank: Optional[int] = option(None, help="vanilla/warmup: every layer's final rank; dynamic: the target mean rank",
                                 low=1, required=True, **_for("vanilla", "dynamic", "warmup"))
    init_rank: Optional[int] = option(None, help="the rank every layer starts at", low=1, required=True, **_for("dynamic"))
    tinit: int = option(0, help="steps at the initial budget", low=0, **_for("dynamic"))
    # the final allocation happens at step total_step - tfinal, which must be a step of the run
    tfinal: int = option(1, help="steps at the final budget", low=1, **_for("dynamic"))
    delta_t: int = option(1, help="re-allocate every delta_t steps", low=1, **_for("dynamic"))
    beta1: float = option(0.85, help="smoothing of the sensitivity", low=0, high=1, open_low=True, open_high=True,
                          **_for("dynamic"))
    beta2: float = option(0.85, help="smoothing of its uncertainty", low=0, high=1, open_low=True, open_high=True,
                          **_for("dynamic"))
    orth_reg_weight: float = option(0.5, help="weight of the orthogonality regulariser", low=0, **_for("dynamic"))
    total_step: Optional[int] = option(None, help="optimizer steps of the run; null: counted", low=1, **_for("dynamic"))
    warmup_rank: Optional[int] = option(None, help="the rank of the warm-up", low=1, required=True, **_for("warmup"))
    truncate_step: Optional[int] = option(None, help="optimizer steps before the SVD truncation", low=1,
                                          required=True, **_for("warmup"))
    ranks: Dict[str, AlphaSchedule] = option(default_factory=dict, help="r = round(alpha * min(m, n)) per layer",
                                             noun="a mapping module type -> alpha schedule",
                                             parse=parse_ranks, required=True, **_for("mixed"))

    @classmethod
    def from_dict(cls, conf: Any, where: str = "lora_conf") -> "LoRAConfig":
        if isinstance(conf, LoRAConfig):
            return conf
        if not isinstance(conf, Mapping):
            raise LoRAConfigError(f"{where}: expected a mapping with a 'strategy' key, got {conf!r}")
        strategy = check_field(cls, "strategy", conf.get("strategy"), f"{where}.strategy", LoRAConfigError)
        if OLD_SCALING_KEY in conf:
            if "lora_alpha" in conf:
                raise LoRAConfigError(
                    f"{where}: both 'alpha' and 'lora_alpha' given; the LoRA scaling is 'lora_alpha' "
                    "('alpha' is its old name)"
                )
            logger.warning("%s.alpha is read as lora_alpha (the LoRA scaling's name now); rename it", where)
            conf = {("lora_alpha" if key == OLD_SCALING_KEY else key): value for key, value in conf.items()}
        if isinstance(conf.get("target_modules"), str):
            conf = {**conf, "target_modules": [conf["target_modules"]]}
        keys = [k for k, f in option_fields(cls).items() if strategy in f.metadata.get("strategies", STRATEGIES)]
        config = read_options(cls, conf, where, LoRAConfigError, keys, context=f" for strategy {strategy!r}")
        config.check_together(where)
        return config

    def check_together(self, where: str = "lora_conf") -> None:
        """What one field's range cannot say: ranks that must be ordered, schedules that must match targets."""
        if self.strategy == "warmup" and self.warmup_rank <= self.rank:
            raise LoRAConfigError(
                f"{where}.warmup_rank: must be above rank ({self.rank}) to warm up at a higher rank, got {self.warmup_rank}"
            )
        if self.strategy == "dynamic" and self.init_rank < self.rank:
            raise LoRAConfigError(f"{where}.init_rank: must be >= rank ({self.rank}), got {self.init_rank}")
        if self.strategy == "mixed":
            types = sorted(set(TRANSFORMER_LINEARS[t] for t in self.target_modules if t in TRANSFORMER_LINEARS))
            unknown_types = sorted(set(self.ranks) - set(types))
            if unknown_types:
                raise LoRAConfigError(f"{where}.ranks: unknown module type(s) {unknown_types}; the targets give {types}")

    def initial_rank(self) -> Optional[int]:
        """The rank every layer starts at (None for mixed: per layer)."""
        return {"vanilla": self.rank, "warmup": self.warmup_rank, "dynamic": self.init_rank}.get(self.strategy)
