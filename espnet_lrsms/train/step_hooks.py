"""The step-hook protocol: whatever acts around a training run's optimizer steps.

A :class:`StepHook` is attached to the run's optimizers before ESPnet's ``Trainer.run`` starts and
detached after it ends, also when it fails (:class:`espnet_lrsms.train.trainer.HookedTrainer`, through
:func:`attached_step_hooks`). The hooks of a model are found in one way, by :func:`step_hooks`:

* every sub-module of the model that is itself a ``StepHook`` (federated unit dropout's ``UnitDropout``);
* every hook added to one of its sub-modules with :func:`add_step_hook` (the Frobenius decay, a LoRA
  strategy: plain objects, not modules).

An added hook is kept by the module it was added to, as PyTorch keeps a module's own hooks: in the
module's ``__dict__`` under one private name (:data:`ADDED_HOOKS_KEY`), read and written only here; it
is no parameter, buffer or sub-module, so the state dict and ``.to()`` never see it. It lives and dies
with the module. (A module-level weak-keyed table would not let it die: a LoRA strategy refers to its
model, and a table value that refers to its own key keeps that key alive for good.)

``attach`` runs on the model ``Trainer.run`` is given: built, on its device, before ESPnet loads a
``--resume`` checkpoint into it and its optimizers and before it wraps it in DDP (the wrapper calls the
same sub-modules, so their forward hooks still run; see ESPnet's ``espnet2/train/trainer.py``).
"""
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, List, Sequence

import torch
from torch import nn

ADDED_HOOKS_KEY = "_espnet_lrsms_step_hooks"  # the list of hooks added to a module (module.__dict__)


@dataclass(frozen=True)
class TrainingRun:
    """The training run hooks are attached to, as ``Trainer.run`` is given it."""

    model: nn.Module  # unwrapped (no DDP)
    train_iter_factory: Any = None  # ESPnet's AbsIterFactory of the training data
    trainer_options: Any = None  # ESPnet's trainer options: output_dir, max_epoch, accum_grad, keep_nbest_models ...
    distributed_option: Any = None  # ESPnet's DistributedOption; None: one process

    @property
    def is_main_process(self) -> bool:
        """True in the process of rank 0, and when not distributed."""
        option = self.distributed_option
        return option is None or not option.distributed or option.dist_rank == 0


class StepHook:
    """Something that acts around the optimizer steps of a training run; both methods do nothing here."""

    def attach(self, optimizers: Sequence[torch.optim.Optimizer], run: TrainingRun) -> None:
        """Hook onto ``optimizers`` before the run's first step (and before ESPnet's resume loads them)."""

    def detach(self, run: TrainingRun, completed: bool) -> None:
        """Undo :meth:`attach` when the run ends; ``completed`` is False when it failed."""


def add_step_hook(module: nn.Module, hook: StepHook) -> None:
    """Keep ``hook`` with ``module``: from now on :func:`step_hooks` of any model holding ``module`` finds it."""
    if not isinstance(hook, StepHook):
        raise TypeError(f"add_step_hook: {type(hook).__name__} is not a StepHook (espnet_lrsms.train.step_hooks)")
    vars(module).setdefault(ADDED_HOOKS_KEY, []).append(hook)


def step_hooks(model: nn.Module) -> List[StepHook]:
    """The step hooks of ``model``, each once: for each module in ``model.modules()`` order, the module
    itself if it is a :class:`StepHook`, then the hooks added to it, in the order they were added."""
    found = []
    for module in model.modules():
        candidates = ([module] if isinstance(module, StepHook) else []) + vars(module).get(ADDED_HOOKS_KEY, [])
        found += [hook for hook in candidates if not any(hook is seen for seen in found)]
    return found


@contextmanager
def attached_step_hooks(
    hooks: Iterable[StepHook], optimizers: Sequence[torch.optim.Optimizer], run: TrainingRun
) -> Iterator[None]:
    """Attach ``hooks`` in order for the block; after it, detach those attached, in reverse order, with
    ``completed`` True when the block ended without an exception. A failing ``attach`` ends the block
    there (the hooks attached before it are detached); a failing ``detach`` does not keep the others from
    running (its exception is raised after them)."""
    attached = []
    completed = False
    try:
        for hook in hooks:
            hook.attach(optimizers, run)
            attached.append(hook)
        yield
        completed = True
    finally:
        with ExitStack() as detaching:  # runs its callbacks last in, first out, each even if one raises
            for hook in attached:
                detaching.callback(hook.detach, run, completed)
