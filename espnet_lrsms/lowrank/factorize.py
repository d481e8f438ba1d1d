"""Swap the ``nn.Linear`` layers of a stack of blocks for factorized ones, by name.

A sub-model (encoder or decoder) is a sequence of B blocks. Inside block b, every ``nn.Linear``
below a child whose name is listed for a module type (e.g. ``self_attn`` → ``mhsa``,
``feed_forward`` → ``ffn``) gets the rank its schedule gives block b. Everything else stays dense.

Pure PyTorch: nothing here imports ESPnet.
"""
import logging
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from espnet_lrsms.lowrank.factorized_linear import FactorizedLinear, break_even_rank
from espnet_lrsms.lowrank.schedule import LowRankConfig, rank_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerPlan:
    """What one linear layer of a block becomes."""

    name: str  # qualified name below the module that owns the blocks, e.g. "encoders.3.self_attn.linear_q"
    module_type: str  # "mhsa" | "ffn"
    block: int
    alpha: Optional[float]
    in_features: int
    out_features: int
    rank: Optional[int]  # None: stays dense

    @property
    def above_break_even(self) -> bool:
        return self.rank is not None and self.rank >= break_even_rank(self.in_features, self.out_features)


def plan_block_ranks(
    blocks: Sequence[nn.Module],
    blocks_name: str,
    config: LowRankConfig,
    module_types: Mapping[str, Tuple[str, ...]],
    where: str = "lowrank",
) -> List[LayerPlan]:
    """Decide the rank of every linear layer of every block.

    Args:
        blocks: the B blocks of a sub-model, in order (block 0 nearest the input).
        blocks_name: name of the ``nn.ModuleList``/``Sequential`` holding them, e.g. ``"encoders"``.
        config: the validated ``lowrank:`` mapping.
        module_types: child names per module type, e.g. ``{"mhsa": ("self_attn",), "ffn": (...)}``.
        where: the config key, for error messages.

    A module type whose schedule is not dense but matches no linear layer is named in a warning.
    """
    num_blocks = len(blocks)
    alphas = {
        mtype: config.schedule(mtype).alphas(num_blocks, f"{where}.{mtype}") for mtype in module_types
    }
    plans = []
    for b, block in enumerate(blocks):
        for mtype, child_names in module_types.items():
            alpha = alphas[mtype][b]
            for child_name in child_names:
                child = getattr(block, child_name, None)
                if child is None:
                    continue
                for sub_name, layer in child.named_modules():
                    if not isinstance(layer, nn.Linear):
                        continue
                    m, n = layer.out_features, layer.in_features
                    rank = None if alpha is None else rank_for(alpha, n, m)
                    plans.append(
                        LayerPlan(
                            name=".".join(filter(None, [blocks_name, str(b), child_name, sub_name])),
                            module_type=mtype,
                            block=b,
                            alpha=alpha,
                            in_features=n,
                            out_features=m,
                            rank=rank,
                        )
                    )
    planned_types = {p.module_type for p in plans}
    for mtype, child_names in module_types.items():
        if mtype not in planned_types and any(alpha is not None for alpha in alphas[mtype]):
            logger.warning(
                "%s.%s: the schedule matches no linear layer (no block of %s has an nn.Linear below %s: "
                "convolutions?); it has no effect",
                where,
                mtype,
                blocks_name,
                " or ".join(child_names),
            )
    return plans


def factorize_planned_linears(
    root: nn.Module, plans: Sequence[LayerPlan], config: LowRankConfig, where: str = "lowrank"
) -> Dict[str, FactorizedLinear]:
    """Replace each planned ``nn.Linear`` of ``root`` by a :class:`FactorizedLinear`.

    The dense layer's current weight seeds the factors: its truncated SVD for ``init: svd`` (the
    dense layer was just initialised as the full-rank model would be, so this is LR-SMS Eq. 1;
    deferred until the factors are first needed, see :func:`materialize_spectral_init_`, so that a
    model built only to load a checkpoint computes no SVD), its standard deviation for
    ``init: kaiming``; ``init: kaiming_traditional`` draws each factor as its own linear layer. Layers at or above the break-even rank
    ``m·n/(m+n)`` are named in a warning, and kept dense with ``keep_dense_above_break_even``.

    Returns:
        the new layers by qualified name.
    """
    above = [p for p in plans if p.above_break_even]
    if above:
        action = "kept dense" if config.keep_dense_above_break_even else "factorized anyway"
        logger.warning(
            "%s: %d layer(s) get a rank at or above the break-even point m*n/(m+n), where U*V^T holds "
            "more weights than the dense matrix (%s; set keep_dense_above_break_even to change): %s",
            where,
            len(above),
            action,
            ", ".join(f"{p.name} (rank {p.rank} >= {break_even_rank(p.in_features, p.out_features):.0f})" for p in above),
        )
    replaced = {}
    for plan in plans:
        if plan.rank is None or (plan.above_break_even and config.keep_dense_above_break_even):
            continue
        parent_name, _, attr = plan.name.rpartition(".")
        parent = root.get_submodule(parent_name)
        dense = getattr(parent, attr)
        layer = FactorizedLinear.from_linear(dense, plan.rank, init=config.init, defer=True)
        setattr(parent, attr, layer)
        replaced[plan.name] = layer
    return replaced


@torch.no_grad()
def reinit_factorized_(root: nn.Module, init_dense_: Callable[[nn.Module], None]) -> int:
    """Re-draw every factorized layer of ``root`` from a dense layer initialised by ``init_dense_``.

    Used when a framework re-initialises all parameters after the model is built (ESPnet's
    ``--init xavier_uniform`` and friends would otherwise draw U and Vᵀ independently and lose the
    spectral init). ``init_dense_`` gets a module holding the dense ``nn.Linear`` under the
    factorized layer's own name, so that name-based rules (ESPnet zeroes parameters named
    ``*.bias``) treat it as they treat the dense layer of the full-rank model. The spectral init
    takes the SVD of that dense weight (deferred if the layer's init was), ``kaiming`` its scale;
    the bias is the dense layer's. ``kaiming_traditional`` layers are left as the framework drew
    them: it treats U and Vᵀ as it treats two linear layers. Returns the number of layers re-drawn.
    """
    count = 0
    for name, layer in root.named_modules():
        if not isinstance(layer, FactorizedLinear) or layer.init_scheme == "kaiming_traditional":
            continue
        dense = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
        dense = dense.to(device=layer.u.device, dtype=layer.u.dtype)
        holder = nn.Module()
        holder.add_module(name.rpartition(".")[2] or "layer", dense)
        init_dense_(holder)
        if layer.init_scheme == "svd" and layer.spectral_init_pending:
            layer.defer_svd_init_(dense.weight)
        elif layer.init_scheme == "svd":
            layer.init_svd_(dense.weight)
        else:
            layer.init_kaiming_(dense_std=float(dense.weight.std()))
        if layer.bias is not None:
            layer.bias.copy_(dense.bias)
        layer.redrawn_by_espnet_init = False
        count += 1
    return count


@torch.no_grad()
def materialize_spectral_init_(root: nn.Module) -> int:
    """Compute every deferred spectral init below ``root`` now, on each layer's current device.

    Training calls this once the model is on its device and before anything reads or broadcasts
    the weights (DDP, the saved initial state), so the SVDs run on the GPU when training on one.
    Returns the number of layers initialised.
    """
    pending = [m for m in root.modules() if isinstance(m, FactorizedLinear) and m.spectral_init_pending]
    start = time.perf_counter()
    for layer in pending:
        layer.materialize_()
    if pending:
        logger.info(
            "spectral init (LR-SMS Eq. 1) of %d factorized layers in %.1f s on %s",
            len(pending),
            time.perf_counter() - start,
            pending[0].u.device,
        )
    return len(pending)


def state_dict_keys(module: nn.Module) -> List[str]:
    """The keys of ``module.state_dict()`` without computing it (which would run pending inits):
    every parameter and persistent buffer, under its qualified name."""
    keys = [name for name, _ in module.named_parameters(remove_duplicate=False)]
    for name, _ in module.named_buffers(remove_duplicate=False):
        owner_name, _, leaf = name.rpartition(".")
        if leaf not in module.get_submodule(owner_name)._non_persistent_buffers_set:
            keys.append(name)
    return keys


def key_mismatch(expected, given, shown: int = 4) -> Optional[str]:
    """What differs between the key sets ``expected`` (the model's) and ``given`` (a checkpoint's):
    the count and the first ``shown`` keys of each kind, or None when they are the same."""
    expected, given = set(expected), set(given)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if not missing and not unexpected:
        return None

    def listed(kind, keys):
        return f"{len(keys)} {kind} key(s) {keys[:shown]}{' ...' if len(keys) > shown else ''}"

    return f"{listed('missing', missing)}, {listed('unexpected', unexpected)}"


def load_exact_state_dict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """``module.load_state_dict(state, strict=True)`` with a short error: ``source`` (the file, and
    the config the module was built from), the counts and a few of the missing and unexpected keys."""
    mismatch = key_mismatch(state_dict_keys(module), state.keys())
    if mismatch is not None:
        raise RuntimeError(f"{source}: the checkpoint does not fit the {type(module).__name__}: {mismatch}")
    module.load_state_dict(state, strict=True)


def require_exact_keys_on_load(module: nn.Module, what: str) -> None:
    """Make ``module.load_state_dict`` fail on missing or unexpected keys below it, even when the
    caller passes ``strict=False`` (ESPnet's ``build_model_from_file`` does), so that a checkpoint whose
    structure does not match the config (another rank schedule, a dense checkpoint) never loads silently.

    Args:
        module: the module to guard (its keys are checked under whatever prefix it is loaded at).
        what: a description for the message, e.g. ``"encoder (lowrank_conformer)"``.
    """

    def check(mod, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        expected = [prefix + k for k in state_dict_keys(mod)]
        mismatch = key_mismatch(expected, [k for k in state_dict.keys() if k.startswith(prefix)])
        if mismatch is not None:
            error_msgs.append(
                f"the checkpoint does not match the structure of the {what} built from the config "
                f"(another lowrank: schedule, or a dense checkpoint?): {mismatch}"
            )

    module.register_load_state_dict_pre_hook(check)
