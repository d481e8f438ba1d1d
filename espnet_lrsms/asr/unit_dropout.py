"""Federated dropout on one machine: each step trains a sub-model without some units of chosen blocks.

A Conformer block's *units* are the entries of its inner dimensions, the ones not on the residual
stream every block shares (``modules`` chooses which):

* ``ffn``: the ``linear_units`` hidden units of ``feed_forward`` (and ``feed_forward_macaron``);
  unit j owns row j of ``w_1`` (with its bias) and column j of ``w_2``;
* ``mhsa``: the ``output_size`` query/key dimensions of ``self_attn`` (rows of ``linear_q``,
  ``linear_k``, ``linear_pos``, entries of ``pos_bias_u/v``) and, drawn separately, its value
  dimensions (rows of ``linear_v``, columns of ``linear_out``);
* ``conv``: the ``output_size`` channels of ``conv_module`` (rows j and j + C of ``pointwise_conv1``,
  depthwise filter j, norm channel j, column j of ``pointwise_conv2``).

A factorized layer ``U·Vᵀ`` gives up rows of ``u`` / columns of ``vt``. The output biases and the
block's layer norms live on the residual stream and are kept. Each step drops exactly
``round(rate · units)`` randomly chosen units of every such dimension of the chosen blocks (zeroed
where they are produced, the kept ones scaled by ``units / kept`` where they are consumed), so the
dropped parameters get no gradient; nothing changes in ``eval()`` or in the state dict. With
``conv_norm: group_norm`` (``GroupNorm(G, C)``) the step is exactly that of the sub-model with
a GroupNorm over the kept channels: the round(rate · C) dropped channels are spread over the G groups
(their counts differ by at most one, the groups that lose one more drawn at random; every group keeps
at least one channel), and each group is normalised over its kept channels only, so each channel stays
in its group. :class:`UnitDropout` is
a step hook (:mod:`espnet_lrsms.train.step_hooks`): trained through
:class:`espnet_lrsms.train.trainer.HookedTrainer`, the draw is held for a whole optimizer step and the
dropped entries and their optimizer state are restored after it (:meth:`UnitDropout.attach`).
Background and the paper's setting: docs/analysis.md.

YAML (``encoder: lowrank_conformer``)::

    encoder_conf:
        unit_dropout:
            blocks: [3, 7]                # 0-based encoder blocks, or "all" (flat dropout)
            rate: 0.5                     # fraction of each unit dimension dropped per step
            modules: [mhsa, ffn, conv]    # default: whole blocks; [ffn]: FFN hidden units only
"""
import logging
from dataclasses import dataclass
from typing import Any, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

from espnet_lrsms.lowrank import FactorizedLinear
from espnet_lrsms.nets.espnet_names import CONV_MODULE, ENCODER_BLOCK_MODULES
from espnet_lrsms.nets.held_entries import HeldEntries, hold_entries
from espnet_lrsms.train.step_hooks import StepHook, TrainingRun

logger = logging.getLogger(__name__)

UNIT_MODULES = ("mhsa", "ffn", "conv")
OPTION_KEYS = ("blocks", "rate", "modules")


def num_dropped(rate: float, units: int) -> int:
    """Units dropped per step: round(rate · units), at least one kept."""
    return min(int(rate * units + 0.5), units - 1)


@dataclass(frozen=True)
class Slot:
    """The entries of ``module.<name>`` that unit j owns: j + offset along ``dim`` (flat view if ``flat``)."""

    module: nn.Module
    name: str
    dim: int
    offsets: Tuple[int, ...] = (0,)
    flat: bool = False

    def param(self) -> nn.Parameter:
        return getattr(self.module, self.name)

    def per_unit(self) -> int:
        p = self.param()
        return len(self.offsets) * (1 if self.flat else p.numel() // p.shape[self.dim])

    def entries(self, units: torch.Tensor) -> HeldEntries:
        index = torch.cat([units + o for o in self.offsets]) if len(self.offsets) > 1 else units
        return HeldEntries(self.param(), self.dim, index, self.flat)


@dataclass(frozen=True)
class Mask:
    """Where a unit dimension is multiplied by the step's mask: ``module``'s input or output, along ``dim``
    (repeated ``repeat`` times, as the value and gate halves of a GLU), scaled by units / kept or not."""

    module: nn.Module
    at: str  # "input" or "output"
    dim: int
    scaled: bool
    repeat: int = 1


@dataclass(frozen=True)
class UnitSpace:
    """One unit dimension of a block: its size, the parameter entries each unit owns, where it is masked."""

    name: str
    size: int
    slots: Tuple[Slot, ...]
    masks: Tuple[Mask, ...]
    batch_norm: Optional[nn.Module] = None  # its running statistics of dropped channels are kept
    group_norm: Optional[nn.GroupNorm] = None  # units drawn evenly from its groups, normalised over the kept ones

    def params_per_unit(self) -> int:
        return sum(s.per_unit() for s in self.slots)

    def groups(self) -> int:
        return self.group_norm.num_groups if self.group_norm is not None else 1

    def num_dropped(self, rate: float) -> int:
        """round(rate · size), at least one unit kept (one per group under group norm)."""
        return min(num_dropped(rate, self.size), self.size - self.groups())

    def dropped_per_group(self, rate: float, generator: torch.Generator) -> List[int]:
        """How many units each group loses: ``num_dropped(rate)`` spread evenly, the groups that lose one more
        drawn at random."""
        groups = self.groups()
        base, extra = divmod(self.num_dropped(rate), groups)
        counts = [base] * groups
        if extra:
            for g in torch.randperm(groups, generator=generator)[:extra].tolist():
                counts[g] += 1
        return counts

    def draw(self, rate: float, generator: torch.Generator) -> torch.Tensor:
        """The dropped units: ``num_dropped(rate)`` at random, spread over the groups (:meth:`dropped_per_group`)."""
        size = self.size // self.groups()
        counts = self.dropped_per_group(rate, generator)
        return torch.cat([torch.randperm(size, generator=generator)[:n] + g * size for g, n in enumerate(counts)])


def group_norm_of_kept(x: torch.Tensor, kept: torch.Tensor, num_groups: int, weight: Optional[torch.Tensor],
                       bias: Optional[torch.Tensor], eps: float) -> torch.Tensor:
    """``GroupNorm(num_groups, C)`` of ``x`` (B, C, ...) restricted to the channels ``kept`` (sorted indices), each
    in its own group of C / num_groups channels, the groups holding different numbers of kept channels:
    (B, len(kept), ...), statistics (mean, biased variance) over each group's kept channels and the rest
    of the dimensions, as ``F.group_norm`` computes them; ``weight`` and ``bias`` are those of the kept channels."""
    channels = x.shape[1]
    group = kept // (channels // num_groups)  # (K,): each kept channel's group
    x = x.index_select(1, kept)
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    zeros = lambda *shape: torch.zeros(*shape, dtype=x.dtype, device=x.device)
    count = zeros(num_groups).index_add_(0, group, torch.ones_like(group, dtype=x.dtype)).clamp(min=1)
    count = count * x[0, 0].numel()
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    mean = zeros(x.shape[0], num_groups).index_add_(1, group, flat.sum(-1)) / count
    centred = flat - mean[:, group, None]
    var = zeros(x.shape[0], num_groups).index_add_(1, group, centred.pow(2).sum(-1)) / count
    normed = (centred * torch.rsqrt(var[:, group, None] + eps)).reshape(x.shape)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    if weight is not None:
        normed = normed * weight.reshape(shape)
    if bias is not None:
        normed = normed + bias.reshape(shape)
    return normed


def _rows(linear: nn.Module) -> List[Slot]:
    weight = "u" if isinstance(linear, FactorizedLinear) else "weight"
    return [Slot(linear, weight, 0)] + ([Slot(linear, "bias", 0)] if linear.bias is not None else [])


def _columns(linear: nn.Module) -> Slot:
    return Slot(linear, "vt" if isinstance(linear, FactorizedLinear) else "weight", 1)


def _check_linear(module: nn.Module, names: Sequence[str], where: str) -> None:
    for name in names:
        if not isinstance(getattr(module, name, None), (nn.Linear, FactorizedLinear)):
            raise ValueError(f"{where}: {name} is not a linear layer")


def block_unit_spaces(block: nn.Module, b: int, modules: Sequence[str], where: str) -> List[UnitSpace]:
    """The unit dimensions of encoder block ``b`` for the module types ``modules``."""
    spaces = []
    if "ffn" in modules:
        for child in ENCODER_BLOCK_MODULES["ffn"]:
            ffn = getattr(block, child, None)
            if ffn is None:
                continue
            if not all(isinstance(getattr(ffn, n, None), (nn.Linear, FactorizedLinear)) for n in ("w_1", "w_2")):
                raise ValueError(f"{where}: block {b} has no linear feed-forward module (positionwise_layer_type: linear)")
            units = ffn.w_2.vt.shape[1] if isinstance(ffn.w_2, FactorizedLinear) else ffn.w_2.weight.shape[1]
            spaces.append(UnitSpace(f"{b}.{child}", units, tuple(_rows(ffn.w_1) + [_columns(ffn.w_2)]),
                                    (Mask(ffn.w_2, "input", -1, True),)))
    if "mhsa" in modules:
        for child in ENCODER_BLOCK_MODULES["mhsa"]:
            attn = getattr(block, child)
            _check_linear(attn, ("linear_q", "linear_k", "linear_v", "linear_out"), f"{where}: block {b}.{child}")
            size = attn.h * attn.d_k
            qk = _rows(attn.linear_q) + _rows(attn.linear_k)
            qk_masks = [Mask(attn.linear_q, "output", -1, False), Mask(attn.linear_k, "output", -1, True)]
            if getattr(attn, "linear_pos", None) is not None:
                qk += _rows(attn.linear_pos)
                qk_masks.append(Mask(attn.linear_pos, "output", -1, True))
            qk += [Slot(attn, n, 0, flat=True) for n in ("pos_bias_u", "pos_bias_v") if getattr(attn, n, None) is not None]
            spaces.append(UnitSpace(f"{b}.{child}.qk", size, tuple(qk), tuple(qk_masks)))
            spaces.append(UnitSpace(f"{b}.{child}.v", size, tuple(_rows(attn.linear_v) + [_columns(attn.linear_out)]),
                                    (Mask(attn.linear_v, "output", -1, True),)))
    if "conv" in modules:
        conv = getattr(block, CONV_MODULE, None)
        if conv is None:
            raise ValueError(f"{where}: modules has conv but block {b} has no convolution module (use_cnn_module: false)")
        channels = conv.depthwise_conv.weight.shape[0]
        slots = [Slot(conv.pointwise_conv1, "weight", 0, (0, channels)), Slot(conv.depthwise_conv, "weight", 0),
                 Slot(conv.pointwise_conv2, "weight", 1)]
        slots += [Slot(conv.pointwise_conv1, "bias", 0, (0, channels))] if conv.pointwise_conv1.bias is not None else []
        slots += [Slot(conv.depthwise_conv, "bias", 0)] if conv.depthwise_conv.bias is not None else []
        slots += [Slot(conv.norm, n, 0) for n in ("weight", "bias") if getattr(conv.norm, n, None) is not None]
        masks = (Mask(conv.pointwise_conv1, "output", 1, False, repeat=2), Mask(conv.depthwise_conv, "output", 1, False),
                 Mask(conv.pointwise_conv2, "input", 1, True))
        batch_norm = conv.norm if isinstance(conv.norm, nn.BatchNorm1d) else None
        group_norm = conv.norm if isinstance(conv.norm, nn.GroupNorm) else None
        spaces.append(UnitSpace(f"{b}.{CONV_MODULE}", channels, tuple(slots), masks, batch_norm, group_norm))
    return spaces


class UnitDropout(nn.Module, StepHook):
    """The step's dropped units of every :class:`UnitSpace`, and the hooks that apply them.

    Units are drawn from a generator of its own (seeded from ``torch.initial_seed()`` when built, so
    every DDP rank draws the same ones) at the first training forward after :meth:`next_step`; until
    optimizers hold it (:meth:`attach`, a step hook of the model), every training forward of the
    encoder is a step.
    """

    def __init__(self, spaces: Sequence[UnitSpace], rate: float):
        super().__init__()
        self.spaces = tuple(spaces)
        self.rate = rate
        self.held = False
        self.generator = torch.Generator().manual_seed(torch.initial_seed())
        self._units: Optional[List[torch.Tensor]] = None
        self._multipliers = {}  # the current step's masks (and kept group-norm channels), by space, mask, device
        self._stale = True
        self._warned = False
        self._hold_handles = []  # the optimizer hooks of attach()

    def extra_repr(self) -> str:
        return f"rate={self.rate}, spaces={len(self.spaces)}"

    def next_step(self) -> None:
        """The next training forward draws new units."""
        self._stale = True

    def dropped_units(self) -> List[torch.Tensor]:
        """The dropped unit indices of each space for the current step (drawn if due)."""
        if self._stale or self._units is None:
            if not self.held and not self._warned:
                logger.warning("unit_dropout: no optimizer holds the dropped units (train through "
                               "espnet_lrsms.bin.asr_train): they still move through momentum and weight decay")
                self._warned = True
            self._units = [s.draw(self.rate, self.generator) for s in self.spaces]
            self._multipliers.clear()
            self._stale = False
        return self._units

    def held_entries(self) -> Iterator[HeldEntries]:
        """Every parameter entry the current step's units own (none before the first draw)."""
        for space, units in zip(self.spaces, self._units or ()):
            for slot in space.slots:
                yield slot.entries(units)

    def multiplier(self, i: int, mask: Mask, like: torch.Tensor) -> torch.Tensor:
        """Space ``i``'s mask for this step, shaped to multiply ``like`` along ``mask.dim``."""
        units = self.dropped_units()[i]
        key = (i, id(mask), like.device, like.dtype, like.dim())
        if key not in self._multipliers:
            size = self.spaces[i].size
            keep = torch.ones(size, dtype=like.dtype)
            keep[units] = 0.0
            if mask.scaled:
                keep *= size / (size - len(units))
            trailing = like.dim() - mask.dim % like.dim() - 1
            self._multipliers[key] = keep.repeat(mask.repeat).to(like.device).view(-1, *([1] * trailing))
        return self._multipliers[key]

    def attach(self, optimizers: Sequence[torch.optim.Optimizer], run: Optional[TrainingRun] = None) -> None:
        """Keep the dropped entries (parameters and optimizer state) unchanged through each step of
        ``optimizers``, then draw new units: one draw per optimizer step, not per forward."""
        self.held = True
        self.next_step()
        for optimizer in optimizers:
            self._hold_handles += hold_entries(optimizer, self.held_entries, self.next_step)

    def detach(self, run: Optional[TrainingRun] = None, completed: bool = True) -> None:
        """Remove the optimizer hooks of :meth:`attach`: one draw per training forward again."""
        for handle in self._hold_handles:
            handle.remove()
        self._hold_handles = []
        self.held = False

    def install(self) -> None:
        for i, space in enumerate(self.spaces):
            for mask in space.masks:
                if mask.at == "input":
                    mask.module.register_forward_pre_hook(self._input_hook(i, mask))
                else:
                    mask.module.register_forward_hook(self._output_hook(i, mask))
            if space.batch_norm is not None:
                self._keep_running_stats(i, space.batch_norm)
            if space.group_norm is not None:
                space.group_norm.register_forward_hook(self._group_norm_of_kept(i))

    def _input_hook(self, i: int, mask: Mask):
        def hook(module, args):
            if not self.training:
                return None
            return (args[0] * self.multiplier(i, mask, args[0]),) + tuple(args[1:])
        return hook

    def _output_hook(self, i: int, mask: Mask):
        def hook(module, args, output):
            return output * self.multiplier(i, mask, output) if self.training else None
        return hook

    def _group_norm_of_kept(self, i: int):
        """Replaces the GroupNorm's training output by the group norm of the kept channels alone (zeros elsewhere)."""
        def hook(module, args, output):
            units = self.dropped_units()[i] if self.training else ()
            if len(units) == 0:
                return None
            key = (i, "kept", output.device)
            if key not in self._multipliers:
                keep = torch.ones(self.spaces[i].size, dtype=torch.bool)
                keep[units] = False
                self._multipliers[key] = keep.nonzero().squeeze(1).to(output.device)
            kept = self._multipliers[key]
            affine = [p.index_select(0, kept) if p is not None else None for p in (module.weight, module.bias)]
            normed = group_norm_of_kept(args[0], kept, module.num_groups, *affine, module.eps)
            return torch.zeros_like(output).index_copy(1, kept, normed.to(output.dtype))
        return hook

    def _keep_running_stats(self, i: int, norm: nn.Module) -> None:
        saved = {}

        def before(module, args):
            if self.training and module.track_running_stats:
                units = self.dropped_units()[i].to(module.running_mean.device)
                saved.update(units=units, mean=module.running_mean[units].clone(), var=module.running_var[units].clone())

        def after(module, args, output):
            if saved:  # through .data: the training-mode backward reads its saved batch statistics only
                module.running_mean.data[saved["units"]] = saved["mean"]
                module.running_var.data[saved["units"]] = saved["var"]
                saved.clear()

        norm.register_forward_pre_hook(before)
        norm.register_forward_hook(after)


@dataclass(frozen=True)
class UnitDropoutPlan:
    """The resolved ``unit_dropout`` option: blocks, rate, modules and what it drops per step."""

    blocks: tuple
    rate: float
    modules: tuple
    dropped_parameters: int  # per training step
    encoder_parameters: int

    @property
    def dropped_fraction(self) -> float:
        return self.dropped_parameters / self.encoder_parameters


def resolve_blocks(blocks: Union[str, Sequence[int]], num_blocks: int, where: str) -> tuple:
    if blocks == "all":
        return tuple(range(num_blocks))
    if isinstance(blocks, str) or not isinstance(blocks, Sequence) or not blocks:
        raise ValueError(f"{where}.blocks: expected a non-empty list of block indices or \"all\", got {blocks!r}")
    bad = [b for b in blocks if isinstance(b, bool) or not isinstance(b, int) or not 0 <= b < num_blocks]
    if bad:
        raise ValueError(f"{where}.blocks: {bad} not in 0 … {num_blocks - 1} (the encoder has {num_blocks} blocks)")
    if len(set(blocks)) != len(blocks):
        raise ValueError(f"{where}.blocks: {list(blocks)} names a block twice")
    return tuple(sorted(blocks))


def resolve_modules(modules: Any, where: str) -> tuple:
    if isinstance(modules, str) or not isinstance(modules, Sequence) or not modules:
        raise ValueError(f"{where}.modules: expected a non-empty list of {list(UNIT_MODULES)}, got {modules!r}")
    unknown = [m for m in modules if m not in UNIT_MODULES]
    if unknown:
        raise ValueError(f"{where}.modules: unknown {unknown} in {list(modules)}; choose from {list(UNIT_MODULES)}")
    if len(set(modules)) != len(modules):
        raise ValueError(f"{where}.modules: {list(modules)} names a module type twice")
    return tuple(m for m in UNIT_MODULES if m in modules)


def unit_spaces(stack: nn.ModuleList, blocks: Sequence[int], modules: Sequence[str], where: str = "unit_dropout"):
    return [s for b in blocks for s in block_unit_spaces(stack[b], b, modules, where)]


def count_dropped(stack: nn.ModuleList, blocks: Sequence[int], rate: float, modules: Sequence[str] = UNIT_MODULES) -> int:
    """Parameters dropped per step by ``rate`` on the ``modules`` of ``blocks``."""
    return sum(s.num_dropped(rate) * s.params_per_unit() for s in unit_spaces(stack, blocks, modules))


def apply_unit_dropout(
    encoder: nn.Module,
    option: Optional[Mapping[str, Any]],
    ffn_option: Optional[Mapping[str, Any]] = None,
    where: str = "encoder_conf.unit_dropout",
) -> Optional[UnitDropoutPlan]:
    """Attach a :class:`UnitDropout` (as ``encoder.unit_dropout``) for ``option``; ``ffn_option`` is the
    old ``ffn_unit_dropout: {blocks, rate}``, read as ``modules: [ffn]``. Adds no state-dict keys."""
    if ffn_option is not None:
        if option is not None:
            raise ValueError("encoder_conf: give unit_dropout or its old form ffn_unit_dropout, not both")
        if not isinstance(ffn_option, Mapping) or set(ffn_option) != {"blocks", "rate"}:
            raise ValueError(f"encoder_conf.ffn_unit_dropout: expected {{blocks: [...] or \"all\", rate: r}}, got {ffn_option!r}")
        option, where = dict(ffn_option, modules=["ffn"]), "encoder_conf.ffn_unit_dropout"
    if option is None:
        return None
    if not isinstance(option, Mapping) or set(option) - set(OPTION_KEYS) or "blocks" not in option or "rate" not in option:
        raise ValueError(f"{where}: expected {{blocks: [...] or \"all\", rate: r, modules: [mhsa, ffn, conv]}}, got {option!r}")
    rate = option["rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"{where}.rate: expected a fraction in [0, 1), got {rate!r}")
    modules = resolve_modules(option.get("modules", list(UNIT_MODULES)), where)
    stack = encoder.encoders
    blocks = resolve_blocks(option["blocks"], len(stack), where)
    spaces = unit_spaces(stack, blocks, modules, where)
    encoder.unit_dropout = UnitDropout(spaces, float(rate))
    encoder.unit_dropout.install()
    encoder.register_forward_pre_hook(_each_forward_a_step_unless_held)
    plan = UnitDropoutPlan(blocks, float(rate), modules, sum(s.num_dropped(rate) * s.params_per_unit() for s in spaces),
                           sum(p.numel() for p in encoder.parameters()))
    logger.info(
        "%s: blocks %s, rate %g, modules %s: %d parameters dropped per step (%.2f %% of the encoder's)",
        where, list(blocks), rate, list(modules), plan.dropped_parameters, 100 * plan.dropped_fraction,
    )
    return plan


def _each_forward_a_step_unless_held(encoder: nn.Module, args) -> None:
    if encoder.training and not encoder.unit_dropout.held:
        encoder.unit_dropout.next_step()


def flat_rate_matching(
    stack: nn.ModuleList, blocks: Sequence[int], rate: float, modules: Sequence[str] = UNIT_MODULES
) -> float:
    """The rate over *all* blocks that drops the same number of parameters per step as ``rate`` over
    ``blocks``: the closest of the 4-decimal rates (each dimension drops whole units, a group-normed one
    spread over its groups), the smallest of equally close ones."""
    target = count_dropped(stack, blocks, rate, modules)
    spaces = [(s, s.params_per_unit()) for s in unit_spaces(stack, range(len(stack)), modules)]
    count = lambda r: sum(s.num_dropped(r) * per_unit for s, per_unit in spaces)
    return min((k / 10000 for k in range(10000)), key=lambda r: (abs(count(r) - target), r))
