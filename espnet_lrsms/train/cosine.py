"""Linear warm-up then cosine decay (LR-SMS's AVSR schedule, as in Auto-AVSR)."""
import math

import torch
from espnet2.schedulers.abs_scheduler import AbsBatchStepScheduler
from typeguard import typechecked


class WarmupCosineLR(torch.optim.lr_scheduler._LRScheduler, AbsBatchStepScheduler):
    """Linear warm-up to the optimiser's LR over ``warmup_steps``, then
    ``lr·(r + (1 − r)·½(1 + cos(π·p)))`` with ``p`` going from 0 to 1 over the remaining steps and
    ``r = min_lr_ratio``; after ``total_steps`` the LR stays at ``r·lr``.

    The paper's AVSR recipe: 75 epochs, 5 of warm-up, peak 1e-3: ``steps_per_epoch: E``,
    ``warmup_epochs: 5``, ``total_epochs: 75`` (or ``warmup_steps``/``total_steps`` directly).
    Steps once per optimiser step (an ESPnet batch-step scheduler).
    """

    @typechecked
    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int = 0,
        total_steps: int = 0,
        steps_per_epoch: int = 0,
        warmup_epochs: float = 0.0,
        total_epochs: float = 0.0,
        min_lr_ratio: float = 0.0,
        last_epoch: int = -1,
    ):
        if steps_per_epoch > 0:
            warmup_steps = int(round(warmup_epochs * steps_per_epoch))
            total_steps = int(round(total_epochs * steps_per_epoch))
        if total_steps <= 0:
            raise ValueError("scheduler_conf: give total_steps (or steps_per_epoch and total_epochs)")
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(
                f"scheduler_conf: need 0 <= warmup_steps < total_steps, got warmup_steps={warmup_steps}, "
                f"total_steps={total_steps}"
            )
        if not 0.0 <= min_lr_ratio <= 1.0:
            raise ValueError(f"scheduler_conf.min_lr_ratio: expected a value in [0, 1], got {min_lr_ratio}")
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_lr_ratio = min_lr_ratio
        super().__init__(optimizer, last_epoch)

    def factor(self, step: int) -> float:
        """LR multiplier after ``step`` optimiser steps."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def get_lr(self):
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]

    def __repr__(self):
        return (
            f"{type(self).__name__}(warmup_steps={self.warmup_steps}, total_steps={self.total_steps}, "
            f"min_lr_ratio={self.min_lr_ratio})"
        )
