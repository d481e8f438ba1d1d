"""LoRA adapters on an ESPnet language model, through PEFT.

PEFT's ``LoraConfig`` (vanilla, warm-up, mixed: plain ``B·A`` adapters with a per-layer rank through
``rank_pattern``) and ``AdaLoraConfig`` (dynamic: SVD-form ``P·Λ·Q`` adapters and its rank allocator)
wrap any ``nn.Linear`` of any ``torch.nn.Module`` by name, in place: ESPnet's model, trainer, optimizer
and checkpoints stay as they are, only the state dict gains the adapter tensors
(``<layer>.base_layer.weight``, ``<layer>.lora_A.default.weight``, … for LoRA;
``<layer>.lora_A.default``, ``<layer>.lora_E.default``, ``<layer>.lora_B.default`` for AdaLoRA).

Every adapted model also carries the buffer ``lora_optimizer_steps``: the optimizer steps taken so
far, saved with the model, so a resumed run continues the strategy's schedule where it stopped.
"""
import logging
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional

import torch
from torch import nn

from espnet_lrsms.lm.lora_config import LoRAConfig, LoRAConfigError
from espnet_lrsms.lowrank.schedule import rank_for
from espnet_lrsms.nets.espnet_names import TRANSFORMER_LINEARS

logger = logging.getLogger(__name__)

ADAPTER_NAME = "default"
STEP_BUFFER = "lora_optimizer_steps"
_BLOCK = re.compile(r"\.(\d+)\.")


@dataclass(frozen=True)
class TargetLayer:
    """A linear layer that gets an adapter."""

    name: str  # qualified name in the model, e.g. "lm.encoder.encoders.3.self_attn.linear_q"
    kind: str  # the last name component, e.g. "linear_q"
    block: int  # index of the block holding it (0 = nearest the input)
    in_features: int
    out_features: int


def find_targets(model: nn.Module, target_modules) -> List[TargetLayer]:
    """Every ``nn.Linear`` of ``model`` whose own name is in ``target_modules``, in model order."""
    targets = []
    for name, module in model.named_modules():
        kind = name.rpartition(".")[2]
        if kind in target_modules and isinstance(module, nn.Linear):
            match = _BLOCK.search(name)
            targets.append(TargetLayer(name, kind, int(match.group(1)) if match else 0, module.in_features, module.out_features))
    if not targets:
        raise LoRAConfigError(
            f"lora_conf.target_modules: no nn.Linear of the model is called any of {list(target_modules)} "
            f"(ESPnet's Transformer LM has {', '.join(TRANSFORMER_LINEARS)})"
        )
    return targets


def planned_ranks(config: LoRAConfig, targets: List[TargetLayer]) -> Dict[str, int]:
    """The rank each target starts training at."""
    if config.strategy != "mixed":
        return {t.name: config.initial_rank() for t in targets}
    num_blocks = max(t.block for t in targets) + 1
    ranks = {}
    for t in targets:
        module_type = TRANSFORMER_LINEARS.get(t.kind)
        schedule = config.ranks.get(module_type)
        if schedule is None:
            raise LoRAConfigError(
                f"lora_conf.ranks: no schedule for {t.kind} (module type {module_type!r}); give one or leave "
                f"{t.kind} out of target_modules"
            )
        alpha = schedule.alphas(num_blocks, f"lora_conf.ranks.{module_type}")[t.block]
        ranks[t.name] = rank_for(alpha, t.in_features, t.out_features)
    return ranks


def ranks_in_state_dict(state: Mapping[str, torch.Tensor]) -> Dict[str, int]:
    """Allocated rank of each LoRA layer of a saved state dict (the rows of ``lora_A``)."""
    suffix = f".lora_A.{ADAPTER_NAME}.weight"
    return {k[: -len(suffix)]: int(v.shape[0]) for k, v in state.items() if k.endswith(suffix)}


@dataclass
class Adapters:
    """What :func:`attach_adapters` did: the targets, their allocated ranks and (dynamic) PEFT's tuner."""

    config: LoRAConfig
    targets: List[TargetLayer]
    ranks: Dict[str, int]
    tuner: Optional[nn.Module] = None  # peft AdaLoraModel for strategy 'dynamic' (holds the rank allocator)


def attach_adapters(
    model: nn.Module,
    config: LoRAConfig,
    rank_overrides: Optional[Mapping[str, int]] = None,
) -> Adapters:
    """Freeze ``model`` and put a PEFT adapter on each target layer, in place.

    Args:
        model: an ESPnet LM (``ESPnetLanguageModel``), weights already loaded.
        config: the validated ``lora_conf``.
        rank_overrides: layer name -> rank, to rebuild a model whose ranks changed during training
            (the warm-up truncation) from its checkpoint; ignored for ``dynamic`` (its shapes never change).
    """
    from peft import AdaLoraConfig, LoraConfig, inject_adapter_in_model
    from peft.tuners.adalora import AdaLoraModel

    targets = find_targets(model, config.target_modules)
    ranks = planned_ranks(config, targets)
    if rank_overrides and config.strategy != "dynamic":
        missing = sorted(set(ranks) - set(rank_overrides))
        if missing:
            raise LoRAConfigError(f"the checkpoint has no LoRA weights for {missing[:3]}... ({len(missing)} layers)")
        ranks = {name: int(rank_overrides[name]) for name in ranks}
    names = [t.name for t in targets]
    tuner = None
    if config.strategy == "dynamic":
        # PEFT needs total_step at construction; the trainer sets the run's real count before step 1
        total = config.total_step or config.tinit + config.tfinal + 1
        peft_config = AdaLoraConfig(
            init_r=config.init_rank,
            target_r=config.rank,
            tinit=config.tinit,
            tfinal=config.tfinal,
            deltaT=config.delta_t,
            beta1=config.beta1,
            beta2=config.beta2,
            orth_reg_weight=config.orth_reg_weight,
            total_step=max(total, config.tinit + config.tfinal + 1),
            lora_alpha=config.lora_alpha,
            lora_dropout=config.dropout,
            target_modules=names,
        )
        tuner = AdaLoraModel(model, peft_config, ADAPTER_NAME)
    else:
        peft_config = LoraConfig(
            r=max(ranks.values()),
            lora_alpha=config.lora_alpha,
            lora_dropout=config.dropout,
            target_modules=names,
            rank_pattern={re.escape(name): r for name, r in ranks.items()},
            bias="none",
        )
        inject_adapter_in_model(peft_config, model, adapter_name=ADAPTER_NAME)
    if STEP_BUFFER not in dict(model.named_buffers()):
        model.register_buffer(STEP_BUFFER, torch.zeros((), dtype=torch.long))
    return Adapters(config, targets, ranks, tuner)


def lora_layers(model: nn.Module) -> Dict[str, nn.Module]:
    """PEFT's adapter layers of ``model`` by qualified name."""
    from peft.tuners.lora import LoraLayer

    return {name: m for name, m in model.named_modules() if isinstance(m, LoraLayer)}


@torch.no_grad()
def current_ranks(model: nn.Module) -> Dict[str, int]:
    """The rank each adapter has now.

    LoRA: the rows of ``lora_A``. AdaLoRA: the singular values ``lora_E`` that are not masked to zero
    (PEFT masks pruned triplets to exactly 0); before the first optimizer step, when PEFT's init has
    every ``lora_E`` at 0, the allocated rank.
    """
    steps = dict(model.named_buffers()).get(STEP_BUFFER)
    trained = steps is not None and int(steps) > 0
    ranks = {}
    for name, layer in lora_layers(model).items():
        if hasattr(layer, "lora_E") and ADAPTER_NAME in layer.lora_E:
            e = layer.lora_E[ADAPTER_NAME]
            ranks[name] = int((e != 0).sum()) if trained else int(e.shape[0])
        else:
            ranks[name] = int(layer.lora_A[ADAPTER_NAME].weight.shape[0])
    return ranks


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def effective_adapter_parameters(model: nn.Module, ranks: Mapping[str, int]) -> int:
    """Adapter parameters that carry a rank: r·(in + out) per LoRA layer, r·(in + out + 1) per AdaLoRA layer."""
    total = 0
    for name, layer in lora_layers(model).items():
        base = layer.get_base_layer()
        per_rank = base.in_features + base.out_features + (1 if hasattr(layer, "lora_E") and ADAPTER_NAME in layer.lora_E else 0)
        total += ranks[name] * per_rank
    return total
