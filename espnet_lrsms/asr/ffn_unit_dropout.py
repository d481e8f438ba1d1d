"""Federated-dropout-style training on one machine: each step trains a sub-model without some FFN units.

Federated dropout (Caldas et al., 2018) sends each client a sub-model with a fraction of the hidden
units of some layers removed; Zhou, Guliani et al. (ICASSP 2022) find that removing them from the most
*ambient* layers costs less WER than removing them from critical layers or than flat dropout across
the model with the same number of parameters dropped. Here a "hidden unit" of a Conformer block is one
of the ``linear_units`` inner units of its feed-forward modules (``feed_forward`` and, with macaron,
``feed_forward_macaron``). Dropping unit j of an FFN removes row j of ``w_1`` (with its bias) and
column j of ``w_2``; for a factorized layer ``U·Vᵀ`` that is row j of ``w_1.u`` and column j of
``w_2.vt``. Those parameters get no gradient that step.

Each training forward pass draws, for every FFN of the chosen blocks, a fresh set of exactly
``round(rate · linear_units)`` units, zeroes them at the input of ``w_2`` and scales the kept ones by
``units / kept`` (inverted dropout, so the full model is used unchanged at inference). Nothing is
dropped in ``eval()`` mode. The dropped-parameter count per step is therefore fixed, which is what makes
the ambient-targeted and the flat setting comparable: :func:`flat_rate_matching` gives the rate over all
blocks that drops as many parameters as a targeted setting.

YAML (``encoder: lowrank_conformer``)::

    encoder_conf:
        ffn_unit_dropout:
            blocks: [3, 7]      # 0-based encoder blocks (e.g. the most ambient ones), or "all"
            rate: 0.5           # fraction of each chosen FFN's hidden units dropped per step
"""
import logging
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from espnet_lrsms.lowrank import FactorizedLinear
from espnet_lrsms.nets.espnet_names import ENCODER_BLOCK_MODULES

logger = logging.getLogger(__name__)

class FFNUnitDropout(nn.Module):
    """Zero exactly ``round(rate · units)`` randomly chosen hidden units per training forward pass.

    Input and output: (..., units), the activations entering ``w_2``.
    """

    def __init__(self, rate: float):
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = rate

    def num_dropped(self, units: int) -> int:
        return min(int(self.rate * units + 0.5), units - 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        units = hidden.shape[-1]
        dropped = self.num_dropped(units)
        if not self.training or dropped == 0:
            return hidden
        mask = torch.ones(units, device=hidden.device, dtype=hidden.dtype)
        mask[torch.randperm(units, device=hidden.device)[:dropped]] = 0.0
        return hidden * (mask * (units / (units - dropped)))

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


def _ffn_modules(block: nn.Module) -> List[nn.Module]:
    return [getattr(block, name) for name in ENCODER_BLOCK_MODULES["ffn"] if getattr(block, name, None) is not None]


def _params_per_unit(ffn: nn.Module) -> int:
    """Parameters that one hidden unit of ``ffn`` owns: its ``w_1`` row (+ bias) and ``w_2`` column."""
    w_1, w_2 = ffn.w_1, ffn.w_2
    row = w_1.u.shape[1] if isinstance(w_1, FactorizedLinear) else w_1.weight.shape[1]
    row += 1 if w_1.bias is not None else 0
    column = w_2.vt.shape[0] if isinstance(w_2, FactorizedLinear) else w_2.weight.shape[0]
    return row + column


def _units(ffn: nn.Module) -> int:
    w_2 = ffn.w_2
    return w_2.vt.shape[1] if isinstance(w_2, FactorizedLinear) else w_2.weight.shape[1]


@dataclass(frozen=True)
class UnitDropoutPlan:
    """The resolved ``ffn_unit_dropout`` option: blocks, rate and what it drops per step."""

    blocks: tuple
    rate: float
    dropped_parameters: int  # per training step
    encoder_parameters: int

    @property
    def dropped_fraction(self) -> float:
        return self.dropped_parameters / self.encoder_parameters


def resolve_blocks(blocks: Union[str, Sequence[int]], num_blocks: int, where: str) -> tuple:
    if blocks == "all":
        return tuple(range(num_blocks))
    if isinstance(blocks, str) or not isinstance(blocks, Sequence) or not blocks:
        raise ValueError(f"{where}.blocks: expected a non-empty list of block indices or \"all\", got {blocks!r}")
    bad = [b for b in blocks if isinstance(b, bool) or not isinstance(b, int) or not 0 <= b < num_blocks]
    if bad:
        raise ValueError(f"{where}.blocks: {bad} not in 0 … {num_blocks - 1} (the encoder has {num_blocks} blocks)")
    if len(set(blocks)) != len(blocks):
        raise ValueError(f"{where}.blocks: {list(blocks)} names a block twice")
    return tuple(sorted(blocks))


def count_dropped(blocks_module: nn.ModuleList, blocks: Sequence[int], rate: float) -> int:
    """Parameters dropped per step by ``rate`` on the FFNs of ``blocks``."""
    probe = FFNUnitDropout(rate)
    return sum(
        probe.num_dropped(_units(ffn)) * _params_per_unit(ffn) for b in blocks for ffn in _ffn_modules(blocks_module[b])
    )


def apply_ffn_unit_dropout(
    encoder: nn.Module, option: Optional[Mapping[str, Any]], where: str = "encoder_conf.ffn_unit_dropout"
) -> Optional[UnitDropoutPlan]:
    """Attach an :class:`FFNUnitDropout` (as ``<ffn>.w_2.unit_dropout``, applied to the input of ``w_2``)
    to every FFN of the chosen blocks of ``encoder.encoders``. Adds no parameters and no state-dict keys."""
    if option is None:
        return None
    if not isinstance(option, Mapping) or set(option) - {"blocks", "rate"} or "blocks" not in option or "rate" not in option:
        raise ValueError(f"{where}: expected {{blocks: [...] or \"all\", rate: r}}, got {option!r}")
    rate = option["rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"{where}.rate: expected a fraction in [0, 1), got {rate!r}")
    stack = encoder.encoders
    blocks = resolve_blocks(option["blocks"], len(stack), where)
    for b in blocks:
        ffns = _ffn_modules(stack[b])
        if not ffns or not all(isinstance(getattr(f, "w_2", None), (nn.Linear, FactorizedLinear)) for f in ffns):
            raise ValueError(f"{where}: block {b} has no linear feed-forward module (positionwise_layer_type: linear)")
        for ffn in ffns:
            ffn.w_2.unit_dropout = FFNUnitDropout(float(rate))
            ffn.w_2.register_forward_pre_hook(_drop_units_at_input)
    plan = UnitDropoutPlan(blocks, float(rate), count_dropped(stack, blocks, rate),
                           sum(p.numel() for p in encoder.parameters()))
    logger.info(
        "%s: blocks %s, rate %g: %d parameters dropped per step (%.2f %% of the encoder's)",
        where, list(blocks), rate, plan.dropped_parameters, 100 * plan.dropped_fraction,
    )
    return plan


def _drop_units_at_input(w_2: nn.Module, args):
    """Forward pre-hook of ``w_2``: its input (..., units) through ``w_2.unit_dropout``."""
    return (w_2.unit_dropout(args[0]),) + tuple(args[1:])


def flat_rate_matching(blocks_module: nn.ModuleList, blocks: Sequence[int], rate: float) -> float:
    """The rate over *all* blocks that drops the same number of parameters per step as ``rate`` over
    ``blocks`` (the closest a 4-decimal rate gets, given that each FFN drops a whole number of units)."""
    target = count_dropped(blocks_module, blocks, rate)
    everything = range(len(blocks_module))
    per_rate = sum(_units(f) * _params_per_unit(f) for b in everything for f in _ffn_modules(blocks_module[b]))
    guess = round(target / per_rate, 4)
    candidates = [round(guess + step * 1e-4, 4) for step in range(-50, 51) if 0 <= guess + step * 1e-4 < 1]
    return min(candidates, key=lambda r: (abs(count_dropped(blocks_module, everything, r) - target), r))
