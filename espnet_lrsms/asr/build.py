"""Build a low-rank ASR model from a training YAML the way ESPnet's trainer does."""
import contextlib
from pathlib import Path
from typing import Dict, Optional, Union

import torch

from espnet_lrsms.asr.task import LowRankASRTask
from espnet_lrsms.lowrank import materialize_spectral_init_
from espnet_lrsms.train.build import build_model_from_yaml


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
