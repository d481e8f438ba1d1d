"""Build an ASR or AVSR model from a training YAML the way ESPnet's trainer does, and summarise it."""
import contextlib
import csv
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

import torch
import yaml

from espnet_lrsms.lowrank import FactorizedLinear, materialize_spectral_init_
from espnet_lrsms.tasks.asr import LowRankASRTask
from espnet_lrsms.tasks.avsr import AVSRTask


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
    a token list of ``vocab_size`` (see :func:`build_asr_model`); under ``torch.device(device)`` unless ``device``
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


def build_asr_model(
    config: Union[str, Path],
    vocab_size: int = 5000,
    device: Optional[Union[str, torch.device]] = None,
    overrides: Optional[Dict] = None,
    spectral_init: bool = True,
):
    """``LowRankASRTask.build_model`` on the YAML at ``config``, with a token list of ``vocab_size``.

    ``device="meta"`` builds without allocating or initialising any weight (parameter counts in
    seconds). ``overrides`` replaces top-level config keys (e.g. ``{"init": "xavier_uniform"}``).
    The spectral init is computed before returning, as training does (``spectral_init=False``
    leaves it pending, see :func:`espnet_lrsms.lowrank.materialize_spectral_init_`).
    """
    model = build_model_from_yaml(LowRankASRTask, config, vocab_size, device, overrides)
    if spectral_init:
        with torch.device(device) if device is not None else contextlib.nullcontext():
            materialize_spectral_init_(model)
    return model


def build_avsr_model(
    config: Union[str, Path],
    vocab_size: int = 5000,
    device: Optional[Union[str, torch.device]] = None,
    overrides: Optional[Dict] = None,
):
    """``AVSRTask.build_model`` on the YAML at ``config`` with a token list of ``vocab_size``.

    ``device="meta"`` builds without allocating or initialising any weight (parameter counts in
    seconds). ``overrides`` replaces top-level config keys (e.g. ``{"model_conf": {...}}``).
    """
    return build_model_from_yaml(AVSRTask, config, vocab_size, device, overrides)


def parameter_summary(model: torch.nn.Module) -> Dict[str, int]:
    """Parameters per top-level part (frontend, encoder, decoder, ctc, …) and ``total``."""
    parts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    parts = {name: count for name, count in parts.items() if count}
    parts["total"] = sum(p.numel() for p in model.parameters())
    return parts


def factorized_layers(model: torch.nn.Module) -> Dict[str, FactorizedLinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, FactorizedLinear)}


def read_paper_rows(directory: Union[str, Path]) -> Dict[str, dict]:
    """``paper_rows.tsv`` of a config directory: config file name → {table, row, params_m}."""
    manifest = Path(directory) / "paper_rows.tsv"
    if not manifest.is_file():
        return {}
    with manifest.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return {r["config"]: {"table": r["table"], "row": r["row"], "params_m": float(r["params_m"])} for r in rows}


def paper_row(config: Union[str, Path]) -> Optional[dict]:
    """The paper row a config reproduces, from ``paper_rows.tsv`` beside it (None if not listed)."""
    config = Path(config).resolve()
    return read_paper_rows(config.parent).get(config.name)
