"""Shared by the low-rank encoder and decoder: factorize a block stack and expose the result."""
import inspect
import logging
from typing import Any, Dict, List, Mapping, Optional, Tuple

from torch import nn

from espnet_lrsms.lowrank import (
    FactorizedLinear,
    LayerPlan,
    LowRankConfig,
    factorize_planned_linears,
    plan_block_ranks,
    require_exact_keys_on_load,
    shared_input_linears,
)
from espnet_lrsms.train.frobenius_decay import decay_attached

logger = logging.getLogger(__name__)


def factorize_block_stack(
    owner: nn.Module,
    blocks_name: str,
    lowrank: Optional[Mapping[str, Any]],
    module_types: Mapping[str, Tuple[str, ...]],
    where: str,
) -> List[LayerPlan]:
    """Factorize the linears of ``owner.<blocks_name>`` per ``lowrank`` and guard loading.

    Returns the plan of every MHSA/FFN linear layer (dense ones included, with ``rank=None``).
    """
    config = LowRankConfig.from_dict(lowrank, where)
    blocks = getattr(owner, blocks_name)
    plans = plan_block_ranks(blocks, blocks_name, config, module_types, where)
    replaced = factorize_planned_linears(owner, plans, config, where)
    kept = [p for p in plans if p.name not in replaced]
    logger.info(
        "%s: %d linear layers factorized (init %s), %d kept dense",
        where,
        len(replaced),
        config.init,
        len(kept),
    )
    require_exact_keys_on_load(owner, f"{type(owner).__name__} ({where})")
    owner.lowrank_config = config
    owner.register_forward_pre_hook(refuse_training_without_task_features)
    fuse_shared_input_projections(owner)
    return plans


TRAINING_ENTRY_POINT = "python -m espnet_lrsms.bin.asr_train (or the recipes' stage 11)"


def refuse_training_without_task_features(owner: nn.Module, _inputs) -> None:
    """Forward pre-hook of a factorized encoder/decoder: its first training forward fails when the
    model was set up by a task without this package's training features, which would train something
    else than the config says, silently. Stock ``python -m espnet2.bin.asr_train`` (which sees these
    classes through the start-up hook) trains every config without them exactly as
    ``espnet_lrsms.bin.asr_train`` does; these two need the latter:

    * ``lowrank.frobenius_decay`` > 0: the decay is an optimizer hook that only this package's task adds;
    * ESPnet's ``--init`` (``init: xavier_uniform`` ...): it draws U and Vᵀ as two independent matrices,
      losing the spectral (or Kaiming) init, which this package's task draws again from a dense layer.
    """
    if not owner.training or getattr(owner, "_task_features_checked", False):
        return
    where = type(owner).__name__
    layers = [m for m in owner.modules() if isinstance(m, FactorizedLinear)]
    redrawn = sum(layer.redrawn_by_espnet_init for layer in layers)
    if redrawn:
        raise RuntimeError(
            f"{where}: ESPnet's --init re-drew U and Vᵀ of {redrawn} factorized layer(s) as independent matrices, "
            f"which loses their {owner.lowrank_config.init} init; train with {TRAINING_ENTRY_POINT}, which draws them "
            "again from dense layers of that init, or set init: null"
        )
    decay = getattr(owner.lowrank_config, "frobenius_decay", 0.0)
    if decay > 0 and not all(decay_attached(layer) for layer in layers):
        raise RuntimeError(
            f"{where}: lowrank.frobenius_decay is {decay}, but no optimizer applies it (ESPnet's own task does not "
            f"know it); train with {TRAINING_ENTRY_POINT}, or set frobenius_decay: 0"
        )
    owner._task_features_checked = True


class SharedInputQKV:
    """``forward_qkv`` of an ESPnet attention module through :func:`espnet_lrsms.lowrank.shared_input_linears`:
    factorized q, k, v that read the same tensor (all three in self-attention, k and v in source
    attention) share one ``Vᵀx`` product, and the encoder output that beam search expands to every
    hypothesis is projected once. Same outputs, same state-dict keys."""

    def __init__(self, attention: nn.Module):
        self.attention = attention

    def __call__(self, query, key, value, expand_kv=False):
        att = self.attention
        if expand_kv:  # ESPnet's partially autoregressive decoding: its own path
            return type(att).forward_qkv(att, query, key, value, expand_kv)
        q, k, v = shared_input_linears((att.linear_q, att.linear_k, att.linear_v), (query, key, value))
        n_batch = query.size(0)
        q, k, v = (t.reshape(n_batch, -1, att.h, att.d_k).transpose(1, 2) for t in (q, k, v))
        return att.q_norm(q), att.k_norm(k), v


def fuse_shared_input_projections(owner: nn.Module, dense: bool = False) -> int:
    """Give every attention module below ``owner`` whose ``linear_q/k/v`` are factorized (any
    ``nn.Linear`` too with ``dense``) a :class:`SharedInputQKV`; returns how many."""
    kinds = (FactorizedLinear, nn.Linear) if dense else (FactorizedLinear,)
    count = 0
    for module in owner.modules():
        linears = [getattr(module, name, None) for name in ("linear_q", "linear_k", "linear_v")]
        if all(isinstance(layer, kinds) for layer in linears) and hasattr(module, "q_norm"):
            module.forward_qkv = SharedInputQKV(module)
            count += 1
    return count


def signature_with(parent_init, extra: Dict[str, Any]) -> inspect.Signature:
    """The parent's ``__init__`` signature plus keyword parameters ``extra`` (name → default).

    ESPnet prints every constructor option and its default (``--print_config``) from the
    signature; this keeps the parent's options visible although the subclass takes ``**kwargs``.
    """
    sig = inspect.signature(parent_init)
    params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    params += [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
        for name, default in extra.items()
    ]
    return sig.replace(parameters=params)
