"""Build an AVSR model from a training YAML the way ESPnet's trainer does (cf. ``asr/build.py``)."""
import contextlib
from pathlib import Path
from typing import Dict, Optional, Union

import torch

from espnet_lrsms.asr.build import dummy_token_list


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
    from espnet_lrsms.tasks.avsr import AVSRTask

    config = Path(config)
    if not config.is_file():
        raise FileNotFoundError(f"no such config: {config}")
    parser = AVSRTask.get_parser()
    args = parser.parse_args(["--config", str(config), "--token_list", "unused", "--output_dir", "unused"])
    for key, value in (overrides or {}).items():
        setattr(args, key, value)
    args.token_list = dummy_token_list(vocab_size)
    with torch.device(device) if device is not None else contextlib.nullcontext():
        return AVSRTask.build_model(args)
