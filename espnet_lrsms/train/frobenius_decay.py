"""Frobenius decay of factorized layers, decoupled as AdamW's weight decay.

A sub-model whose ``lowrank:`` has ``frobenius_decay: λ`` (:class:`espnet_lrsms.lowrank.LowRankConfig`)
gets, before every optimizer step, ``U ← U − lr·λ·∂R/∂U`` and ``Vᵀ ← Vᵀ − lr·λ·∂R/∂Vᵀ`` with
``R = ‖U·Vᵀ‖²_F / 2``, both from the weights before the step, and ESPnet's ``weight_decay`` stops
applying to ``U`` and ``Vᵀ`` (they move to a parameter group of their own with ``weight_decay: 0``);
biases and dense layers keep the optimizer's decay. The learning rate is the group's at that step, so
the schedule scales the decay as it scales AdamW's. A step that the AMP grad scaler skips skips the
decay too (the hook runs inside ``optimizer.step``).
"""
import logging
from typing import List, Tuple

import torch

from espnet_lrsms.lowrank import FactorizedLinear, frobenius_decay_grads

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


def use_frobenius_decay(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Move the factors of :func:`decayed_layers` to a group without weight decay and register the
    decay as a step pre-hook of ``optimizer``; call before any step or scheduler. Returns the number of
    layers decayed."""
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
    group = optimizer.param_groups[-1]

    @torch.no_grad()
    def decay(optimizer, args, kwargs):
        lr = group["lr"]
        for layer, strength in layers:
            grad_u, grad_vt = frobenius_decay_grads(layer.u, layer.vt)
            layer.u.sub_(grad_u, alpha=lr * strength)
            layer.vt.sub_(grad_vt, alpha=lr * strength)

    optimizer.register_step_pre_hook(decay)
    for layer, _ in layers:
        layer.frobenius_decay_applied = True  # checked when training starts (espnet_lrsms.asr.lowrank_blocks)
    logger.info("frobenius_decay: %d factorized layers (λ %s); their factors leave the optimizer's weight decay",
                len(layers), sorted({s for _, s in layers}))
    return len(layers)
