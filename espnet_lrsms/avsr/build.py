"""Build an AVSR model from a training YAML the way ESPnet's trainer does."""
from pathlib import Path
from typing import Dict, Optional, Union

import torch

from espnet_lrsms.avsr.task import AVSRTask
from espnet_lrsms.train.build import build_model_from_yaml


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
