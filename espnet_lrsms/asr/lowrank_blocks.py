"""Shared by the low-rank encoder and decoder: factorize a block stack and expose the result."""
import inspect
import logging
from typing import Any, Dict, List, Mapping, Optional, Tuple

from torch import nn

from espnet_lrsms.lowrank import (
    LayerPlan,
    LowRankConfig,
    factorize_planned_linears,
    plan_block_ranks,
    require_exact_keys_on_load,
)

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
    return plans


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
