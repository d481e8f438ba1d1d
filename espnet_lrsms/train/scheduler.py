"""Warm-up → constant → square-root cool-down learning rate (LR-SMS's ASR schedule, Hägele et al. 2024)."""
import math

import torch
from espnet2.schedulers.abs_scheduler import AbsBatchStepScheduler
from typeguard import typechecked


class WarmupConstantSqrtCooldownLR(torch.optim.lr_scheduler._LRScheduler, AbsBatchStepScheduler):
    """Linear warm-up to the optimiser's LR, constant, then ``lr·(1 − √((s − s_c)/cooldown_steps))``.

    With ``total_steps`` optimiser steps, the cool-down starts at ``s_c = total_steps − cooldown_steps``
    and reaches 0 at ``total_steps``. The paper: 75 epochs, 5 of warm-up, the last 15 cooling down:
    ``warmup_steps = 5·E``, ``cooldown_steps = 15·E``, ``total_steps = 75·E`` for E steps per epoch
    (equivalently give ``steps_per_epoch: E`` with ``warmup_epochs``, ``cooldown_epochs``,
    ``total_epochs``). Steps once per optimiser step (an ESPnet batch-step scheduler).
    """

    @typechecked
    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int = 0,
        cooldown_steps: int = 0,
        total_steps: int = 0,
        steps_per_epoch: int = 0,
        warmup_epochs: float = 0.0,
        cooldown_epochs: float = 0.0,
        total_epochs: float = 0.0,
        last_epoch: int = -1,
    ):
        if steps_per_epoch > 0:
            warmup_steps = int(round(warmup_epochs * steps_per_epoch))
            cooldown_steps = int(round(cooldown_epochs * steps_per_epoch))
            total_steps = int(round(total_epochs * steps_per_epoch))
        if total_steps <= 0:
            raise ValueError("scheduler_conf: give total_steps (or steps_per_epoch and total_epochs)")
        if warmup_steps < 0 or cooldown_steps < 0 or warmup_steps + cooldown_steps > total_steps:
            raise ValueError(
                f"scheduler_conf: need 0 <= warmup_steps + cooldown_steps <= total_steps, got "
                f"warmup_steps={warmup_steps}, cooldown_steps={cooldown_steps}, total_steps={total_steps}"
            )
        self.warmup_steps = warmup_steps
        self.cooldown_steps = cooldown_steps
        self.total_steps = total_steps
        super().__init__(optimizer, last_epoch)

    def factor(self, step: int) -> float:
        """LR multiplier after ``step`` optimiser steps."""
        if self.warmup_steps > 0 and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        start = self.total_steps - self.cooldown_steps
        if self.cooldown_steps > 0 and step >= start:
            return max(0.0, 1.0 - math.sqrt(min(step - start, self.cooldown_steps) / self.cooldown_steps))
        return 1.0

    def get_lr(self):
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]

    def __repr__(self):
        return (
            f"{type(self).__name__}(warmup_steps={self.warmup_steps}, "
            f"cooldown_steps={self.cooldown_steps}, total_steps={self.total_steps})"
        )
