"""Frobenius decay of factorized layers, decoupled as AdamW's weight decay.

A sub-model whose ``lowrank:`` has ``frobenius_decay: λ`` (:class:`espnet_lrsms.lowrank.LowRankConfig`)
gets, before every optimizer step, ``U ← U − lr·λ·∂R/∂U`` and ``Vᵀ ← Vᵀ − lr·λ·∂R/∂Vᵀ`` with
``R = ‖U·Vᵀ‖²_F / 2``, both from the weights before the step, and ESPnet's ``weight_decay`` stops
applying to ``U`` and ``Vᵀ`` (they move to a parameter group of their own with ``weight_decay: 0``);
biases and dense layers keep the optimizer's decay. The learning rate is the group's at that step, so
the schedule scales the decay as it scales AdamW's. A step that the AMP grad scaler skips skips the
decay too (the hook runs inside ``optimizer.step``). The decay is a step hook of the model
(:class:`FrobeniusDecay`, :mod:`espnet_lrsms.train.step_hooks`); :func:`decay_attached` says whether a
layer gets it.
"""
import logging
import weakref
from typing import List, Optional, Sequence, Tuple

import torch

from espnet_lrsms.lowrank import FactorizedLinear, frobenius_decay_grads
from espnet_lrsms.train.step_hooks import StepHook, TrainingRun, add_step_hook

logger = logging.getLogger(__name__)


def decayed_layers(model: torch.nn.Module) -> List[Tuple[FactorizedLinear, float]]:
    """Each factorized layer under a sub-model with ``frobenius_decay`` > 0, with its λ."""
    found = []
    for owner in model.modules():
        config = getattr(owner, "lowrank_config", None)
        decay = getattr(config, "frobenius_decay", 0.0)
        if decay > 0:
            found += [(layer, decay) for layer in owner.modules() if isinstance(layer, FactorizedLinear)]
    return found


class FrobeniusDecay(StepHook):
    """The decay of ``layers`` (each with its λ) before every step of ``optimizer``, at the learning
    rate of ``group`` (the factors' own parameter group), as a step pre-hook of the optimizer.

    A step hook of the model (added by :func:`use_frobenius_decay`): :meth:`attach` registers the
    optimizer hook, :meth:`detach` removes it. ``use_frobenius_decay`` attaches it at once, so the
    optimizer it sets up decays from its first step, in a training run or not; the run's attach then
    finds it attached, and the run's end detaches it.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, group: dict, layers: List[Tuple[FactorizedLinear, float]]):
        self.optimizer = optimizer
        self.group = group
        self.layers = layers
        self._handle = None

    @torch.no_grad()
    def decay(self, optimizer, args, kwargs) -> None:
        """The optimizer step pre-hook: ``U ← U − lr·λ·∂R/∂U``, ``Vᵀ ← Vᵀ − lr·λ·∂R/∂Vᵀ`` of every layer."""
        lr = self.group["lr"]
        for layer, strength in self.layers:
            grad_u, grad_vt = frobenius_decay_grads(layer.u, layer.vt)
            layer.u.sub_(grad_u, alpha=lr * strength)
            layer.vt.sub_(grad_vt, alpha=lr * strength)

    def attach(self, optimizers: Sequence[torch.optim.Optimizer] = (), run: Optional[TrainingRun] = None) -> None:
        """Register the decay on its optimizer (nothing if it is registered already)."""
        if self._handle is None:
            self._handle = self.optimizer.register_step_pre_hook(self.decay)
            _ATTACHED.add(self)

    def detach(self, run: Optional[TrainingRun] = None, completed: bool = True) -> None:
        """Remove the decay from its optimizer."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
            _ATTACHED.discard(self)


_ATTACHED: "weakref.WeakSet[FrobeniusDecay]" = weakref.WeakSet()  # the decays whose optimizer hook is registered


def decay_attached(layer: FactorizedLinear) -> bool:
    """Whether an optimizer applies the Frobenius decay to ``layer`` (a :class:`FrobeniusDecay` of it is
    attached); the low-rank encoder/decoder refuse to train without it (:mod:`espnet_lrsms.asr.lowrank_blocks`)."""
    return any(decayed is layer for decay in list(_ATTACHED) for decayed, _ in decay.layers)


def use_frobenius_decay(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Move the factors of :func:`decayed_layers` to a group without weight decay (call before any step
    or scheduler: ESPnet's schedulers are built on the groups there are), and add to ``model`` the decay
    before every step of ``optimizer`` as a step hook (:class:`FrobeniusDecay`, attached at once).
    Returns the number of layers decayed."""
    layers = decayed_layers(model)
    if not layers:
        return 0
    factors = {id(p) for layer, _ in layers for p in (layer.u, layer.vt)}
    moved = []
    for group in optimizer.param_groups:
        moved += [p for p in group["params"] if id(p) in factors]
        group["params"] = [p for p in group["params"] if id(p) not in factors]
    if len(moved) != len(factors):
        raise ValueError(f"frobenius_decay: {len(factors) - len(moved)} factor(s) are not in the optimizer")
    template = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
    optimizer.param_groups = [g for g in optimizer.param_groups if g["params"]]
    optimizer.add_param_group({**template, "params": moved, "weight_decay": 0.0})
    decay = FrobeniusDecay(optimizer, optimizer.param_groups[-1], layers)
    decay.attach()
    add_step_hook(model, decay)
    logger.info("frobenius_decay: %d factorized layers (λ %s); their factors leave the optimizer's weight decay",
                len(layers), sorted({s for _, s in layers}))
    return len(layers)
