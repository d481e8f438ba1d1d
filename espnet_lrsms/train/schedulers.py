"""Learning-rate schedules of LR-SMS, with lengths in optimiser steps or in epochs.

* ``warmup_constant_sqrt_cooldown`` (ASR): linear warm-up, constant, square-root cool-down
  (Hägele et al. 2024). The paper: 75 epochs, 5 of warm-up, the last 15 cooling down.
* ``warmup_cosine`` (AVSR, as Auto-AVSR): linear warm-up, then cosine decay. The paper: 75 epochs,
  5 of warm-up, peak 1e-3.

Both step once per optimiser step (ESPnet batch-step schedulers). A length is given either in steps
(``warmup_steps``) or in epochs (``warmup_epochs``), not both. Epochs become steps with
``steps_per_epoch``; left out (or null), the training task counts it from the batches ESPnet really
builds (:mod:`espnet_lrsms.train.epoch_steps`), so one config is right on any corpus and GPU count.
"""
import math
from typing import Optional

import torch
from espnet2.schedulers.abs_scheduler import AbsBatchStepScheduler
from typeguard import typechecked


class EpochLengthScheduler(torch.optim.lr_scheduler._LRScheduler, AbsBatchStepScheduler):
    """Base class: ``lr = base_lr · factor(step)`` after ``step`` optimiser steps.

    Subclasses name their lengths in ``LENGTHS`` (each given as ``<name>_steps`` or
    ``<name>_epochs``), turn them into steps with :meth:`steps_of` and define :meth:`factor`.
    """

    LENGTHS = ("total",)

    def steps_of(self, name: str, steps: Optional[int], epochs: Optional[float], steps_per_epoch: Optional[int]) -> int:
        """``<name>_steps``, or ``<name>_epochs`` × ``steps_per_epoch`` rounded; 0 when neither is given."""
        if steps is not None and epochs is not None:
            raise ValueError(
                f"scheduler_conf: give {name}_steps or {name}_epochs, not both (got {name}_steps={steps}, "
                f"{name}_epochs={epochs})"
            )
        if epochs is None:
            return steps or 0
        if steps_per_epoch is None:
            raise ValueError(
                f"scheduler_conf.steps_per_epoch: {name}_epochs={epochs} needs the optimiser steps of one epoch. "
                "python -m espnet_lrsms.bin.asr_train (and the recipes) counts them from the training batches "
                "when steps_per_epoch is left out; stock espnet2.bin.asr_train, or a scheduler built elsewhere, "
                "needs it given (--scheduler_conf steps_per_epoch=<n>)"
            )
        if steps_per_epoch <= 0:
            raise ValueError(f"scheduler_conf.steps_per_epoch: expected a positive number, got {steps_per_epoch}")
        return int(round(epochs * steps_per_epoch))

    def factor(self, step: int) -> float:
        raise NotImplementedError

    def get_lr(self):
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]

    def __repr__(self):
        fields = ", ".join(f"{name}_steps={getattr(self, name + '_steps')}" for name in self.LENGTHS)
        return f"{type(self).__name__}({fields})"


class WarmupConstantSqrtCooldownLR(EpochLengthScheduler):
    """Linear warm-up to the optimiser's LR, constant, then ``lr·(1 − √((s − s_c)/cooldown_steps))``.

    With ``total_steps`` optimiser steps, the cool-down starts at ``s_c = total_steps − cooldown_steps``
    and reaches 0 at ``total_steps``, so the last update (step ``total_steps − 1``) still has a
    positive rate. In epochs: ``warmup_epochs: 5``, ``cooldown_epochs: 15``, ``total_epochs: 75``.
    """

    LENGTHS = ("warmup", "cooldown", "total")

    @typechecked
    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: Optional[int] = None,
        cooldown_steps: Optional[int] = None,
        total_steps: Optional[int] = None,
        steps_per_epoch: Optional[int] = None,
        warmup_epochs: Optional[float] = None,
        cooldown_epochs: Optional[float] = None,
        total_epochs: Optional[float] = None,
        last_epoch: int = -1,
    ):
        self.warmup_steps = self.steps_of("warmup", warmup_steps, warmup_epochs, steps_per_epoch)
        self.cooldown_steps = self.steps_of("cooldown", cooldown_steps, cooldown_epochs, steps_per_epoch)
        self.total_steps = self.steps_of("total", total_steps, total_epochs, steps_per_epoch)
        if self.total_steps <= 0:
            raise ValueError("scheduler_conf: give total_steps or total_epochs (> 0)")
        if self.warmup_steps < 0 or self.cooldown_steps < 0 or self.warmup_steps + self.cooldown_steps > self.total_steps:
            raise ValueError(
                f"scheduler_conf: need 0 <= warmup_steps + cooldown_steps <= total_steps, got "
                f"warmup_steps={self.warmup_steps}, cooldown_steps={self.cooldown_steps}, total_steps={self.total_steps}"
            )
        super().__init__(optimizer, last_epoch)

    def factor(self, step: int) -> float:
        """LR multiplier after ``step`` optimiser steps."""
        if self.warmup_steps > 0 and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        start = self.total_steps - self.cooldown_steps
        if self.cooldown_steps > 0 and step >= start:
            return max(0.0, 1.0 - math.sqrt(min(step - start, self.cooldown_steps) / self.cooldown_steps))
        return 1.0


class WarmupCosineLR(EpochLengthScheduler):
    """Linear warm-up to the optimiser's LR over ``warmup_steps``, then
    ``lr·(r + (1 − r)·½(1 + cos(π·p)))`` with ``p`` going from 0 to 1 over the remaining steps and
    ``r = min_lr_ratio``; after ``total_steps`` the LR stays at ``r·lr``.
    In epochs (the paper's AVSR recipe): ``warmup_epochs: 5``, ``total_epochs: 75``.

    ESPnet's ``cosine_anneal_warmup_restart`` is not the same schedule: it takes absolute ``max_lr`` and
    ``min_lr`` instead of the optimiser's LR, warms up from ``min_lr``, restarts after each cycle instead
    of holding the floor, and counts steps only (no epochs).
    """

    LENGTHS = ("warmup", "total")

    @typechecked
    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: Optional[int] = None,
        total_steps: Optional[int] = None,
        steps_per_epoch: Optional[int] = None,
        warmup_epochs: Optional[float] = None,
        total_epochs: Optional[float] = None,
        min_lr_ratio: float = 0.0,
        last_epoch: int = -1,
    ):
        self.warmup_steps = self.steps_of("warmup", warmup_steps, warmup_epochs, steps_per_epoch)
        self.total_steps = self.steps_of("total", total_steps, total_epochs, steps_per_epoch)
        if self.total_steps <= 0:
            raise ValueError("scheduler_conf: give total_steps or total_epochs (> 0)")
        if not 0 <= self.warmup_steps < self.total_steps:
            raise ValueError(
                f"scheduler_conf: need 0 <= warmup_steps < total_steps, got warmup_steps={self.warmup_steps}, "
                f"total_steps={self.total_steps}"
            )
        if not 0.0 <= min_lr_ratio <= 1.0:
            raise ValueError(f"scheduler_conf.min_lr_ratio: expected a value in [0, 1], got {min_lr_ratio}")
        self.min_lr_ratio = min_lr_ratio
        super().__init__(optimizer, last_epoch)

    def factor(self, step: int) -> float:
        """LR multiplier after ``step`` optimiser steps."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def __repr__(self):
        return f"{super().__repr__()[:-1]}, min_lr_ratio={self.min_lr_ratio})"


SCHEDULERS = {"warmup_constant_sqrt_cooldown": WarmupConstantSqrtCooldownLR, "warmup_cosine": WarmupCosineLR}
