"""Per-step logic of the four LoRA training strategies, run from optimizer hooks.

A strategy is a step hook of its model (:mod:`espnet_lrsms.train.step_hooks`), added when the adapters
are attached (:meth:`espnet_lrsms.lm.task.LoRALMTask.build_adapted_model`) and found by
:func:`lora_strategy`: the trainer attaches it to the run's optimizer before training
(:meth:`LoRAStrategy.attach`, which checks the run's options and counts its optimizer steps) and
detaches it after, writing ``lora_ranks.json`` when the run completed.

ESPnet's trainer calls ``optimizer.step()`` once per update, after the gradients are clipped and
before ``optimizer.zero_grad()``. A strategy registers a step **post**-hook on that optimizer
(parameters updated, gradients still present): PEFT's documented place for ``update_and_allocate``
(``dynamic``: importance, budget, masking) and where ``warmup`` truncates its adapters. The post-hook
also counts the step in the model's ``lora_optimizer_steps`` buffer.

``dynamic`` also hooks the model's forward: in training, AdaLoRA's orthogonality regulariser
``w·mean(‖PᵀP − I‖_F, ‖QQᵀ − I‖_F)`` is added to the loss the forward returns, as PEFT's
``AdaLoraModel.forward`` adds it, so ESPnet's backward, gradient clipping, logged loss and grad norm
include it.

``vanilla`` and ``mixed`` only count steps: their ranks are fixed when the adapters are attached.

What a strategy keeps between steps beyond the model's tensors (``dynamic``: AdaLoRA's smoothed
importance scores and its current rank pattern) travels in the optimizer's state dict under
``"lora_strategy"``: ESPnet saves it in ``checkpoint.pth`` every epoch and loads it back on
``--resume true`` after the model (so the step counter is known by then), and a resumed run goes
on exactly as an uninterrupted one.
"""
import json
import logging
import math
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch
from torch import nn

from espnet_lrsms.fileio import write_text_atomic
from espnet_lrsms.lm.adapters import (
    ADAPTER_NAME,
    STEP_BUFFER,
    Adapters,
    current_ranks,
    effective_adapter_parameters,
    lora_layers,
    trainable_parameters,
)
from espnet_lrsms.lm.lora_config import LoRAConfigError
from espnet_lrsms.lowrank.factorized_linear import truncated_svd_factors
from espnet_lrsms.train.step_hooks import StepHook, TrainingRun, step_hooks

logger = logging.getLogger(__name__)

RANKS_FILE = "lora_ranks.json"
STATE_KEY = "lora_strategy"  # the strategy's state in the optimizer's state dict


def count_optimizer_steps(train_iter_factory, trainer_options) -> Optional[int]:
    """Optimizer steps of the whole run: epochs × (batches per epoch // accum_grad); None if unknown."""
    per_epoch = getattr(train_iter_factory, "num_iters_per_epoch", None)
    if per_epoch is None:
        sampler = getattr(train_iter_factory, "sampler", None)
        if sampler is None:
            return None
        per_epoch = len(sampler)
    return trainer_options.max_epoch * (per_epoch // trainer_options.accum_grad)


class LoRAStrategy(StepHook):
    """The strategy a ``lora_conf`` names, bound to one adapted model (a step hook of it)."""

    def __init__(self, model: nn.Module, adapters: Adapters):
        self.model = model
        self.adapters = adapters
        self.config = adapters.config
        self.total_steps: Optional[int] = None
        self._handles = []

    # -- what was promised, what there is -------------------------------------------------------
    def promised_total_rank(self) -> int:
        """The sum of the ranks of all adapted layers at the end of training."""
        if self.config.strategy == "mixed":
            return sum(self.adapters.ranks.values())
        return self.config.rank * len(self.adapters.targets)

    def promised_ranks(self) -> Optional[Dict[str, int]]:
        """Per-layer final ranks where the strategy fixes them (None for ``dynamic``: the allocator decides)."""
        if self.config.strategy == "mixed":
            return dict(self.adapters.ranks)
        if self.config.strategy in ("vanilla", "warmup"):
            return {t.name: self.config.rank for t in self.adapters.targets}
        return None

    def summary(self) -> dict:
        ranks = current_ranks(self.model)
        total = sum(p.numel() for p in self.model.parameters())
        return {
            "strategy": self.config.strategy,
            "optimizer_steps": int(getattr(self.model, STEP_BUFFER)),
            "layers": len(ranks),
            "ranks": ranks,
            "total_rank": sum(ranks.values()),
            "promised_total_rank": self.promised_total_rank(),
            "trainable_parameters": trainable_parameters(self.model),
            "effective_adapter_parameters": effective_adapter_parameters(self.model, ranks),
            "model_parameters": total,
        }

    def describe(self, when: str) -> str:
        s = self.summary()
        by_rank: Dict[int, int] = {}
        for r in s["ranks"].values():
            by_rank[r] = by_rank.get(r, 0) + 1
        ranks = ", ".join(f"{n}×r{r}" for r, n in sorted(by_rank.items(), reverse=True))
        return (
            f"LoRA strategy {s['strategy']} ({when}, step {s['optimizer_steps']}): {s['layers']} adapted linears, "
            f"ranks {ranks}, total rank {s['total_rank']} (promised at the end: {s['promised_total_rank']}); "
            f"trainable parameters {s['trainable_parameters']:,} of {s['model_parameters']:,} "
            f"({100 * s['trainable_parameters'] / s['model_parameters']:.2f} %), "
            f"adapter parameters carrying a rank {s['effective_adapter_parameters']:,}"
        )

    def write_summary(self, output_dir) -> Path:
        return write_text_atomic(Path(output_dir) / RANKS_FILE, json.dumps(self.summary(), indent=1) + "\n")

    # -- a training run ---------------------------------------------------------------------------
    def attach(self, optimizers: Sequence[torch.optim.Optimizer], run: TrainingRun) -> None:
        """Check the run's options, :meth:`install` on its first optimizer for its counted optimizer
        steps, and log the trainable parameters."""
        keep = run.trainer_options.keep_nbest_models
        keep = max(keep) if isinstance(keep, (list, tuple)) else keep
        if self.config.strategy in ("warmup", "dynamic") and keep > 1:
            raise LoRAConfigError(
                f"lora_conf.strategy={self.config.strategy} changes the adapters' ranks during training, so "
                f"averaging the {keep} best epochs (keep_nbest_models: {keep}) would mix ranks: "
                "set keep_nbest_models: 1"
            )
        self.install(optimizers[0], count_optimizer_steps(run.train_iter_factory, run.trainer_options))
        logger.info("%s", self.describe(f"start, {self.total_steps} optimizer steps in the run"))

    def detach(self, run: TrainingRun, completed: bool) -> None:
        """:meth:`remove`; when the run completed, log the ranks and write ``lora_ranks.json`` to its
        output directory (rank 0 only)."""
        self.remove()
        if completed and run.is_main_process:
            logger.info("%s", self.describe("end"))
            logger.info("LoRA ranks written to %s", self.write_summary(run.trainer_options.output_dir))

    # -- hooks ----------------------------------------------------------------------------------
    def install(self, optimizer: torch.optim.Optimizer, total_steps: Optional[int]) -> None:
        """Hook the strategy onto ``optimizer``; ``total_steps``: optimizer steps of the whole run."""
        self.total_steps = total_steps
        self.check_schedule()
        self._handles.append(optimizer.register_step_post_hook(self._post_hook))
        self._handles.append(optimizer.register_state_dict_post_hook(self._save_state))
        self._handles.append(optimizer.register_load_state_dict_pre_hook(self._load_state))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def check_schedule(self) -> None:
        pass

    # -- state across a resume -------------------------------------------------------------------
    def state_dict(self) -> dict:
        """What the strategy needs, beyond the model's tensors, to go on after a resume."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def _save_state(self, optimizer, state_dict: dict) -> dict:
        state_dict[STATE_KEY] = self.state_dict()
        return state_dict

    def _load_state(self, optimizer, state_dict: dict) -> dict:
        state_dict = dict(state_dict)
        state = state_dict.pop(STATE_KEY, None)
        if state is not None:
            self.load_state_dict(state)
        return state_dict

    @property
    def step(self) -> int:
        return int(getattr(self.model, STEP_BUFFER))

    def _post_hook(self, optimizer, args, kwargs) -> None:
        self.after_step(optimizer, self.step)
        getattr(self.model, STEP_BUFFER).add_(1)

    def after_step(self, optimizer, step: int) -> None:
        pass


class WarmupStrategy(LoRAStrategy):
    """High-rank warm-up: train at ``warmup_rank``; after ``truncate_step`` optimizer steps replace
    each adapter by the rank-``rank`` truncated SVD of its ``scaling·B·A`` (the best rank-r
    approximation of the update learnt so far) and train on at that rank.

    The new, smaller ``lora_A``/``lora_B`` replace the old ones in the optimizer's parameter groups;
    their optimizer state (Adam moments) starts afresh. Under DDP they are parameters that the
    ``DistributedDataParallel`` wrapper, built before, does not know: their gradients are averaged over
    the ranks by hooks of their own (:func:`average_gradients_over_ranks`), or every rank would go on
    with the gradient of its own share of the batch.
    """

    def check_schedule(self) -> None:
        if self.total_steps is not None and self.config.truncate_step >= self.total_steps:
            raise LoRAConfigError(
                f"lora_conf.truncate_step={self.config.truncate_step} is not below the {self.total_steps} optimizer "
                "steps of this run (max_epoch x batches per epoch / accum_grad): the adapters would never be truncated"
            )

    def after_step(self, optimizer, step: int) -> None:
        if step + 1 >= self.config.truncate_step and self.needs_truncation():
            self.truncate(optimizer)

    def needs_truncation(self) -> bool:
        return any(r != self.config.rank for r in current_ranks(self.model).values())

    @torch.no_grad()
    def truncate(self, optimizer: Optional[torch.optim.Optimizer]) -> None:
        replaced = {}
        for layer in lora_layers(self.model).values():
            old_a, old_b = layer.lora_A[ADAPTER_NAME], layer.lora_B[ADAPTER_NAME]
            new_a, new_b = truncate_lora_factors(layer, self.config.rank)
            replaced[id(old_a.weight)] = new_a.weight
            replaced[id(old_b.weight)] = new_b.weight
            if optimizer is not None:
                optimizer.state.pop(old_a.weight, None)
                optimizer.state.pop(old_b.weight, None)
        if optimizer is not None:
            for group in optimizer.param_groups:
                group["params"] = [replaced.get(id(p), p) for p in group["params"]]
        self._handles += average_gradients_over_ranks(replaced.values())
        logger.info("%s", self.describe(f"truncated to rank {self.config.rank} by SVD"))


def average_gradients_over_ranks(params) -> list:
    """When ``torch.distributed`` runs more than one process: average each parameter's gradient over the
    ranks as soon as the backward pass has accumulated it, as DDP does for the parameters it wraps (ESPnet
    scales the loss for that average). For parameters made after the model was wrapped. Returns the hook
    handles (none in one process)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return []
    world_size = dist.get_world_size()

    def average(param: torch.Tensor) -> None:
        dist.all_reduce(param.grad)
        param.grad.div_(world_size)

    return [p.register_post_accumulate_grad_hook(average) for p in params]


@torch.no_grad()
def truncate_lora_factors(layer: nn.Module, rank: int):
    """Give a PEFT LoRA layer the rank-``rank`` truncated SVD of its update ``scaling·B·A``.

    ``B`` (out × r₀) and ``A`` (r₀ × in) become ``B'`` (out × rank) and ``A'`` (rank × in) with
    ``scaling'·B'·A' = U_r Σ_r V_rᵀ`` of ``scaling·B·A``, ``scaling' = lora_alpha / rank`` (PEFT's
    scaling at the new rank); ``√Σ_r/√scaling'`` goes to each side. Returns the new ``nn.Linear``
    modules (A', B').
    """
    a = layer.lora_A[ADAPTER_NAME].weight
    b = layer.lora_B[ADAPTER_NAME].weight
    delta = (b @ a) * layer.scaling[ADAPTER_NAME]
    left, right = truncated_svd_factors(delta, rank)
    scaling = layer.lora_alpha[ADAPTER_NAME] / rank
    root = math.sqrt(scaling)
    new_a = nn.Linear(a.shape[1], rank, bias=False).to(device=a.device, dtype=a.dtype)
    new_b = nn.Linear(rank, b.shape[0], bias=False).to(device=b.device, dtype=b.dtype)
    new_a.weight.copy_(right / root)
    new_b.weight.copy_(left / root)
    layer.lora_A[ADAPTER_NAME] = new_a
    layer.lora_B[ADAPTER_NAME] = new_b
    layer.r[ADAPTER_NAME] = rank
    layer.scaling[ADAPTER_NAME] = scaling
    return new_a, new_b


class DynamicRankStrategy(LoRAStrategy):
    """AdaLoRA through PEFT's ``AdaLoraModel``: every adapter is ``P·diag(λ)·Q`` at ``init_rank``; the
    importance of each triplet is the smoothed sensitivity ``|p·∂L/∂p|`` times its smoothed
    uncertainty; the total budget falls cubically from ``init_rank·L`` to ``rank·L`` between steps
    ``tinit`` and ``total_step − tfinal`` (re-allocated every ``delta_t`` steps), where the final
    allocation is fixed; the λ of pruned triplets are held at 0.
    """

    def check_schedule(self) -> None:
        config, tuner = self.config, self.adapters.tuner
        total = config.total_step or self.total_steps
        if total is None:
            raise LoRAConfigError(
                "lora_conf.total_step: the number of optimizer steps of this run cannot be counted from its "
                "iterator; set total_step"
            )
        if config.total_step is not None and self.total_steps is not None and config.total_step > self.total_steps:
            raise LoRAConfigError(
                f"lora_conf.total_step={config.total_step} is more than the {self.total_steps} optimizer steps of this "
                f"run (max_epoch x batches per epoch / accum_grad): the final allocation at step "
                f"{config.total_step - config.tfinal} would never happen; set total_step: null or at most {self.total_steps}"
            )
        if config.tinit >= total - config.tfinal:
            raise LoRAConfigError(
                f"lora_conf: tinit={config.tinit} and tfinal={config.tfinal} leave no budget phase in a run of "
                f"{total} optimizer steps (need tinit < total_step - tfinal)"
            )
        tuner.rankallocator.set_total_step(total)
        tuner.peft_config[ADAPTER_NAME].total_step = total
        self.total_steps = total

    def state_dict(self) -> dict:
        allocator = self.adapters.tuner.rankallocator
        return {
            "ipt": dict(allocator.ipt),
            "exp_avg_ipt": dict(allocator.exp_avg_ipt),
            "exp_avg_unc": dict(allocator.exp_avg_unc),
            "rank_pattern": self.adapters.tuner.peft_config[ADAPTER_NAME].rank_pattern,
        }

    def load_state_dict(self, state: dict) -> None:
        allocator = self.adapters.tuner.rankallocator
        device = next(self.model.parameters()).device
        for key in ("ipt", "exp_avg_ipt", "exp_avg_unc"):
            setattr(allocator, key, {n: t.to(device) for n, t in state[key].items()})
        self.adapters.tuner.peft_config[ADAPTER_NAME].rank_pattern = state["rank_pattern"]

    def install(self, optimizer: torch.optim.Optimizer, total_steps: Optional[int]) -> None:
        super().install(optimizer, total_steps)
        if self.config.orth_reg_weight > 0:
            self._handles.append(self.model.register_forward_hook(self._add_penalty))

    def _add_penalty(self, module: nn.Module, args, output):
        """A forward hook on ESPnet's LM: in training, its loss ``(loss, stats, weight)`` becomes
        ``loss + w·penalty`` (as PEFT's ``AdaLoraModel.forward`` adds it), so the backward pass, ESPnet's
        gradient clipping, the logged loss and grad norm all include the penalty; ``stats`` gains
        ``orth_penalty``. Validation (eval mode) keeps the LM's loss alone."""
        penalty = orthogonality_penalty(module) if module.training else None
        if penalty is None:
            return output
        loss, stats, weight = output
        loss = loss + self.config.orth_reg_weight * penalty
        return loss, dict(stats, loss=loss.detach(), orth_penalty=penalty.detach().reshape(loss.shape)), weight

    def after_step(self, optimizer, step: int) -> None:
        peft_config = self.adapters.tuner.peft_config[ADAPTER_NAME]
        if step > self.total_steps - self.config.tfinal and peft_config.rank_pattern is None:
            # resumed from a checkpoint without the strategy's state, after the final allocation: the
            # allocation is in the masked singular values
            peft_config.rank_pattern = {
                name: (p != 0).view(-1).tolist()
                for name, p in self.model.named_parameters()
                if f"lora_E.{ADAPTER_NAME}" in name
            }
        self.adapters.tuner.update_and_allocate(step)


def orthogonality_penalty(model: nn.Module) -> Optional[torch.Tensor]:
    """AdaLoRA's regulariser: the mean over all ``P`` (out × r) and ``Q`` (r × in) of
    ``‖PᵀP − I‖_F`` and ``‖QQᵀ − I‖_F``."""
    terms = []
    for layer in lora_layers(model).values():
        if not hasattr(layer, "lora_E") or ADAPTER_NAME not in layer.lora_E:
            continue
        q, p = layer.lora_A[ADAPTER_NAME], layer.lora_B[ADAPTER_NAME]
        eye = torch.eye(q.shape[0], device=q.device, dtype=q.dtype)
        terms.append(torch.linalg.matrix_norm(q @ q.T - eye))
        terms.append(torch.linalg.matrix_norm(p.T @ p - eye))
    return torch.stack(terms).mean() if terms else None


def build_strategy(model: nn.Module, adapters: Adapters) -> LoRAStrategy:
    cls = {"warmup": WarmupStrategy, "dynamic": DynamicRankStrategy}.get(adapters.config.strategy, LoRAStrategy)
    return cls(model, adapters)


def lora_strategy(model: nn.Module) -> Optional[LoRAStrategy]:
    """The LoRA strategy among the step hooks of ``model`` (an LM adapted by ``LoRALMTask``); None if none."""
    found = [hook for hook in step_hooks(model) if isinstance(hook, LoRAStrategy)]
    if len(found) > 1:
        raise ValueError(f"{type(model).__name__} has {len(found)} LoRA strategies among its step hooks, expected one")
    return found[0] if found else None
