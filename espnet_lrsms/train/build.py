"""Build a model of any ESPnet task from a training YAML the way ESPnet's trainer does, and summarise it.

Each family's builder is in its wing: :func:`espnet_lrsms.asr.build.build_asr_model`,
:func:`espnet_lrsms.avsr.build.build_avsr_model`.
"""
import contextlib
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

import torch
import yaml

from espnet_lrsms.lowrank import FactorizedLinear


def dummy_token_list(vocab_size: int) -> List[str]:
    """``<blank>``, ``<unk>``, vocab_size − 3 placeholder tokens and ``<sos/eos>``: ESPnet's layout."""
    return ["<blank>", "<unk>"] + [f"tok{i}" for i in range(vocab_size - 3)] + ["<sos/eos>"]


# Keys ESPnet writes into exp/*/config.yaml besides the options; its parser refuses them in a --config file.
RECORD_ONLY_KEYS = ("required", "version", "distributed")


def training_options(config: Mapping) -> dict:
    """``config`` without :data:`RECORD_ONLY_KEYS`, so that an experiment's ``config.yaml`` is a valid training
    config (any other key that is not an option is still refused)."""
    return {key: value for key, value in config.items() if key not in RECORD_ONLY_KEYS}


def build_model_from_yaml(task, config: Union[str, Path], vocab_size: int, device, overrides: Optional[Dict]):
    """``task.build_model`` on the YAML at ``config`` (a training config or an experiment's ``config.yaml``) with
    a token list of ``vocab_size`` (see :func:`espnet_lrsms.asr.build.build_asr_model`); under ``torch.device(device)`` unless ``device``
    is None."""
    config = Path(config)
    if not config.is_file():
        raise FileNotFoundError(f"no such config: {config}")
    options = yaml.safe_load(config.read_text(encoding="utf-8"))
    if not isinstance(options, dict):
        raise ValueError(f"{config}: not a YAML mapping of training options")
    options = training_options(options)
    parser = task.get_parser()
    known = {action.dest for action in parser._actions}
    unknown = [key for key in options if key not in known]
    if unknown:
        raise ValueError(f"{config}: not options of {task.__name__}: {', '.join(map(str, unknown))}")
    parser.set_defaults(**options)  # what ESPnet's parser does with a --config file
    args = parser.parse_args(["--token_list", "unused", "--output_dir", "unused"])
    for key, value in (overrides or {}).items():
        setattr(args, key, value)
    args.token_list = dummy_token_list(vocab_size)
    with torch.device(device) if device is not None else contextlib.nullcontext():
        return task.build_model(args)


def parameter_summary(model: torch.nn.Module) -> Dict[str, int]:
    """Parameters per top-level part (frontend, encoder, decoder, ctc, …) and ``total``."""
    parts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    parts = {name: count for name, count in parts.items() if count}
    parts["total"] = sum(p.numel() for p in model.parameters())
    return parts


def factorized_layers(model: torch.nn.Module) -> Dict[str, FactorizedLinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, FactorizedLinear)}
