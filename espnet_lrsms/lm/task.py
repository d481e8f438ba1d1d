"""ESPnet's LM task, plus LoRA adaptation of a trained LM (``--lora_conf``, ``--base_lm_file``).

Without ``--lora_conf`` this is ESPnet's ``LMTask`` unchanged (the base LM of recipe stage 7). With
it (stage 9), the model is built as the base LM's config says, the base weights are loaded from
``--base_lm_file``, frozen, and PEFT adapters are attached as ``lora_conf`` says
(:mod:`espnet_lrsms.lm.lora_config`); ESPnet's trainer then trains only the adapters, with the
strategy's per-step logic hooked onto its optimizer: the strategy is a step hook of the model, which
:class:`espnet_lrsms.train.trainer.HookedTrainer` attaches for the run (:mod:`espnet_lrsms.lm.strategies`).
"""
import argparse
import logging
import os
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch
import yaml
from espnet2.lm.espnet_model import ESPnetLanguageModel
from espnet2.tasks.lm import LMTask
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str_or_none
from typeguard import typechecked

from espnet_lrsms.fileio import load_weights_only
from espnet_lrsms.lm.adapters import attach_adapters, ranks_in_state_dict
from espnet_lrsms.lm.lora_config import LoRAConfig
from espnet_lrsms.lm.strategies import build_strategy
from espnet_lrsms.lowrank import load_exact_state_dict
from espnet_lrsms.train.cpu_processes import CPUProcessesTask
from espnet_lrsms.train.init_param import weights_only_init_param
from espnet_lrsms.train.step_hooks import add_step_hook
from espnet_lrsms.train.trainer import HookedTrainer


ARCHITECTURE_KEYS = ("lm", "lm_conf", "model", "model_conf")


def take_architecture(args: argparse.Namespace, base_lm_config) -> None:
    """Set ``args``' ``lm``, ``lm_conf``, ``model``, ``model_conf`` to the base LM's (ESPnet then
    writes them to this run's config.yaml, so the adapted LM loads from that alone)."""
    with open(base_lm_config, encoding="utf-8") as f:
        base = yaml.safe_load(f)
    missing = [k for k in ("lm", "lm_conf") if k not in base]
    if missing:
        raise ValueError(f"--base_lm_config {base_lm_config}: no {missing} (not an ESPnet LM config.yaml)")
    for key in ARCHITECTURE_KEYS:
        if key in base:
            setattr(args, key, base[key])


class LoRALMTask(CPUProcessesTask, LMTask):
    """``LMTask`` with ``--lora_conf`` / ``--base_lm_file`` (see the module docstring)."""

    trainer = HookedTrainer  # attaches the model's LoRA strategy (a step hook) for the run

    @classmethod
    def main_worker(cls, args: argparse.Namespace):
        with weights_only_init_param():  # --init_param files: tensors only, never code
            return super().main_worker(args)

    @classmethod
    @typechecked
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        super().add_task_arguments(parser)
        group = parser.add_argument_group(description="LoRA adaptation (espnet_lrsms)")
        group.add_argument(
            "--lora_conf",
            action=NestedDictAction,
            default=dict(),
            help="LoRA strategy and ranks (espnet_lrsms.lm.lora_config); empty: train the LM itself",
        )
        group.add_argument(
            "--base_lm_config",
            type=str_or_none,
            default=None,
            help="config.yaml of the base LM: its lm, lm_conf, model and model_conf replace this run's "
            "(the adapted model must be the base LM's architecture)",
        )
        group.add_argument(
            "--base_lm_file",
            type=str_or_none,
            default=None,
            help="the trained LM (state dict) that the adapters adapt; needed with --lora_conf",
        )
        return parser

    @classmethod
    @typechecked
    def build_model(cls, args: argparse.Namespace) -> ESPnetLanguageModel:
        lora_conf = getattr(args, "lora_conf", None) or {}
        if not lora_conf:
            return super().build_model(args)
        config = LoRAConfig.from_dict(lora_conf)
        if getattr(args, "base_lm_config", None):
            # ESPnet writes args to config.yaml after build_model: record where the base LM is from anywhere
            args.base_lm_config = os.path.abspath(args.base_lm_config)
            take_architecture(args, args.base_lm_config)
        overrides = None
        checkpoint = Path(getattr(args, "output_dir", None) or "") / "checkpoint.pth"
        if getattr(args, "resume", False) and checkpoint.is_file():
            # a resumed warm-up run may have truncated its adapters already: rebuild them at the saved ranks.
            # checkpoint.pth is this run's own file, which ESPnet's resume loads with weights_only=False anyway
            overrides = ranks_in_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=False)["model"])
        model = cls.build_adapted_model(args, config, base_lm_file=args.base_lm_file, rank_overrides=overrides)
        return model

    @classmethod
    def build_model_from_file(
        cls,
        config_file: Optional[Union[Path, str]] = None,
        model_file: Optional[Union[Path, str]] = None,
        device: str = "cpu",
    ) -> Tuple[torch.nn.Module, argparse.Namespace]:
        """The LM with ``model_file`` loaded weights-only and exactly, LoRA adapters at the checkpoint's
        ranks (:func:`espnet_lrsms.lm.task.load_lm`); ESPnet's would load with ``strict=False``
        and drop the adapters silently."""
        if model_file is None:
            return super().build_model_from_file(config_file, None, device)
        return load_lm(config_file or Path(model_file).parent / "config.yaml", model_file, device)

    @classmethod
    def build_adapted_model(
        cls,
        args: argparse.Namespace,
        config: LoRAConfig,
        base_lm_file: Optional[str],
        rank_overrides: Optional[Dict[str, int]] = None,
        loading: bool = False,
    ) -> ESPnetLanguageModel:
        """The base LM of ``args`` with ``base_lm_file``'s weights (if given) and adapters attached.

        ``loading``: the model is rebuilt to load an adapted checkpoint (which holds the base weights too).
        """
        model = super().build_model(args)
        if base_lm_file is not None:
            load_exact_state_dict(model, load_weights_only(base_lm_file), f"--base_lm_file {base_lm_file}")
        elif not loading:
            logging.warning("--lora_conf without --base_lm_file: adapting a randomly initialised LM")
        adapters = attach_adapters(model, config, rank_overrides=rank_overrides)
        strategy = build_strategy(model, adapters)
        add_step_hook(model, strategy)  # found by espnet_lrsms.lm.strategies.lora_strategy and the trainer
        if not loading:
            logging.info("%s", strategy.describe("built"))
        return model


def load_lm(lm_train_config: Union[str, Path], lm_file: Union[str, Path], device: str = "cpu"):
    """Build the LM that ``lm_train_config`` (an ESPnet LM ``config.yaml``) describes and load ``lm_file``.

    A config with ``lora_conf`` is rebuilt with its adapters at the ranks the checkpoint holds (a warm-up
    run truncates them), so the state dict loads strictly: every tensor must match.
    Returns ``(model, args)``, the model in eval mode.
    """
    with open(lm_train_config, encoding="utf-8") as f:
        args = argparse.Namespace(**yaml.safe_load(f))
    state = load_weights_only(lm_file)
    lora_conf = getattr(args, "lora_conf", None) or {}
    if lora_conf:
        model = LoRALMTask.build_adapted_model(
            args, LoRAConfig.from_dict(lora_conf), base_lm_file=None, rank_overrides=ranks_in_state_dict(state), loading=True
        )
    else:
        model = LMTask.build_model(args)
    load_exact_state_dict(model, state, f"{lm_file} (config {lm_train_config})")
    return model.to(device).eval(), args
