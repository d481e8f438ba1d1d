"""The step-hook protocol (espnet_lrsms.train.step_hooks): which hooks a model has, in which order they are
attached and detached, and that they are detached when training fails."""
import gc
from contextlib import nullcontext
import weakref

import pytest
import torch
from espnet2.train.trainer import Trainer as EspnetTrainer
from torch import nn

from espnet_lrsms.train.step_hooks import StepHook, TrainingRun, add_step_hook, attached_step_hooks, step_hooks
from espnet_lrsms.train.trainer import HookedTrainer


class Recorder(StepHook):
    """A hook that writes what happens to it into ``log``."""

    def __init__(self, name, log, fail_attach=False, model=None):
        self.name, self.log, self.fail_attach, self.model = name, log, fail_attach, model

    def attach(self, optimizers, run):
        if self.fail_attach:
            raise RuntimeError(f"{self.name} cannot attach")
        self.log.append(("attach", self.name, len(optimizers)))

    def detach(self, run, completed):
        self.log.append(("detach", self.name, completed))


class ModuleHook(nn.Linear, StepHook):
    """A sub-module that is itself a step hook (as UnitDropout is)."""

    def __init__(self, name, log):
        super().__init__(2, 2)
        self.name, self.log = name, log

    def attach(self, optimizers, run):
        self.log.append(("attach", self.name, len(optimizers)))

    def detach(self, run, completed):
        self.log.append(("detach", self.name, completed))


def model_with_hooks(log):
    """root (added: a, b) > inner (a module hook m; added: c); a is also added to inner: found once."""
    root = nn.Sequential(nn.Linear(2, 2), nn.Sequential(ModuleHook("m", log)))
    a, b, c = Recorder("a", log), Recorder("b", log), Recorder("c", log)
    add_step_hook(root, a)
    add_step_hook(root, b)
    add_step_hook(root[1], a)
    add_step_hook(root[1][0], c)
    return root, [a, b, root[1][0], c]


def test_step_hooks_finds_module_hooks_and_added_hooks_in_module_order():
    log = []
    root, expected = model_with_hooks(log)
    assert step_hooks(root) == expected
    assert [h.name for h in step_hooks(root[1])] == ["a", "m", "c"]
    assert step_hooks(nn.Linear(2, 2)) == []
    assert set(root.state_dict()) == {"0.weight", "0.bias", "1.0.weight", "1.0.bias"}  # added hooks are no state


def test_an_added_hook_must_be_a_step_hook():
    with pytest.raises(TypeError, match="add_step_hook: object is not a StepHook"):
        add_step_hook(nn.Linear(2, 2), object())


def test_an_added_hook_that_refers_to_its_model_dies_with_it():
    model = nn.Linear(2, 2)
    add_step_hook(model, Recorder("a", [], model=model))
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None


def test_attach_in_order_detach_in_reverse_order():
    log = []
    root, hooks = model_with_hooks(log)
    with attached_step_hooks(step_hooks(root), ["optimizer"], TrainingRun(root)):
        log.append("train")
    assert log == [("attach", n, 1) for n in "abmc"] + ["train"] + [("detach", n, True) for n in "cmba"]


def test_training_that_fails_detaches_every_hook_not_completed():
    log = []
    root, _ = model_with_hooks(log)
    with pytest.raises(ValueError, match="diverged"):
        with attached_step_hooks(step_hooks(root), [], TrainingRun(root)):
            raise ValueError("diverged")
    assert log[4:] == [("detach", n, False) for n in "cmba"]


def test_a_failing_attach_detaches_the_hooks_attached_before_it():
    log = []
    hooks = [Recorder("a", log), Recorder("b", log, fail_attach=True), Recorder("c", log)]
    with pytest.raises(RuntimeError, match="b cannot attach"):
        with attached_step_hooks(hooks, [], TrainingRun(nn.Linear(2, 2))):
            log.append("train")
    assert log == [("attach", "a", 0), ("detach", "a", False)]


def test_a_failing_detach_does_not_keep_the_others_from_detaching():
    log = []

    class Broken(Recorder):
        def detach(self, run, completed):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        with attached_step_hooks([Recorder("a", log), Broken("b", log)], [], TrainingRun(nn.Linear(2, 2))):
            pass
    assert log[-1] == ("detach", "a", True)


@pytest.mark.parametrize("fails", [False, True], ids=["completes", "fails"])
def test_the_trainer_attaches_the_models_hooks_around_espnets_run(monkeypatch, fails):
    log = []
    model = nn.Linear(2, 2)
    add_step_hook(model, Recorder("a", log))

    def espnet_run(cls, model, optimizers, *args, **kwargs):
        log.append("espnet run")
        if fails:
            raise ValueError("diverged")

    class Trainer(HookedTrainer):
        @classmethod
        def before_run(cls, model, optimizers, train_iter_factory, trainer_options, distributed_option):
            log.append("before_run")

        @classmethod
        def after_run(cls, model, trainer_options, distributed_option, completed):
            log.append(("after_run", completed))

    monkeypatch.setattr(EspnetTrainer, "run", classmethod(espnet_run))
    with pytest.raises(ValueError, match="diverged") if fails else nullcontext():
        Trainer.run(model, [torch.optim.SGD(model.parameters(), lr=0.1)], [None], None, None, None, None, None)
    completed = not fails
    assert log == ["before_run", ("attach", "a", 1), "espnet run", ("detach", "a", completed), ("after_run", completed)]
