"""Keep chosen entries of parameters, and of their optimizer state, unchanged through an optimizer step.

A pre-step hook copies the entries out of each parameter and of every state tensor of the parameter's
shape (Adam's ``exp_avg``, ``exp_avg_sq``, SGD's ``momentum_buffer`` ...); a post-step hook writes them
back, so neither the update (momentum, weight decay included) nor the state's decay touches them. State
that the step created is zero at those entries. Per-tensor scalars such as Adam's ``step`` still count
the step. Pure PyTorch; registered by :meth:`espnet_lrsms.asr.unit_dropout.UnitDropout.attach` as a step hook (:mod:`espnet_lrsms.train.step_hooks`).
"""
from typing import Callable, Iterable, List, NamedTuple, Optional

import torch
from torch.utils.hooks import RemovableHandle


class HeldEntries(NamedTuple):
    """Entries ``index`` along dimension ``dim`` of ``param`` (of its flat view when ``flat``)."""

    param: torch.nn.Parameter
    dim: int
    index: torch.Tensor  # int64, any device
    flat: bool = False

    def view(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.view(-1) if self.flat else tensor


def _state_tensors(optimizer: torch.optim.Optimizer, param: torch.nn.Parameter) -> dict:
    state = optimizer.state.get(param, {})
    return {k: v for k, v in state.items() if torch.is_tensor(v) and v.shape == param.shape}


def hold_entries(
    optimizer: torch.optim.Optimizer,
    entries: Callable[[], Iterable[HeldEntries]],
    after_step: Optional[Callable[[], None]] = None,
) -> List[RemovableHandle]:
    """Register the two step hooks on ``optimizer``; ``entries()`` is asked before every step (entries of
    parameters the optimizer does not hold are ignored), ``after_step()`` is called after it."""
    saved = []

    @torch.no_grad()
    def before(opt, args, kwargs):
        saved.clear()
        owned = {id(p) for group in opt.param_groups for p in group["params"]}
        for e in entries():
            if id(e.param) not in owned or e.index.numel() == 0:
                continue
            index = e.index.to(e.param.device)
            state = {k: e.view(v).index_select(e.dim, index) for k, v in _state_tensors(opt, e.param).items()}
            saved.append((e, index, e.view(e.param).index_select(e.dim, index), state))

    @torch.no_grad()
    def after(opt, args, kwargs):
        for e, index, value, state in saved:
            e.view(e.param).index_copy_(e.dim, index, value)
            for k, v in _state_tensors(opt, e.param).items():
                if k in state:
                    e.view(v).index_copy_(e.dim, index, state[k])
                else:
                    e.view(v).index_fill_(e.dim, index, 0)
        saved.clear()
        if after_step is not None:
            after_step()

    return [optimizer.register_step_pre_hook(before), optimizer.register_step_post_hook(after)]
