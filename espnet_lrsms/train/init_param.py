"""ESPnet's ``--init_param`` with the file read weights-only.

ESPnet's ``load_pretrained_model`` unpickles the file with ``weights_only=False``: a crafted ``.pth`` runs its
code the moment training starts. :func:`load_init_param` takes the same argument,
``<file>[:<src_key>[:<dst_key>[:<excludes>]]]`` (``src_key``: keep only keys under this prefix, which is
dropped; ``dst_key``: load into this sub-module; ``excludes``: comma-separated key prefixes to leave out;
``--ignore_init_mismatch`` leaves out keys the model lacks or has in another shape), and loads tensors only.
Unlike ESPnet, an empty ``excludes`` excludes nothing (ESPnet's excludes every key).
:func:`weights_only_init_param` makes ``AbsTask.main_worker`` call it instead of ESPnet's loader.
"""
from typing import ContextManager, Mapping

import torch

from espnet_lrsms import espnet_patches
from espnet_lrsms.fileio import load_weights_only


def load_init_param(init_param: str, model: torch.nn.Module, ignore_init_mismatch: bool,
                    map_location: str = "cpu") -> None:
    """Load ``init_param`` (see the module docstring) into ``model``; a file that holds more than tensors
    and plain containers is refused (``ValueError`` naming it) before anything of it is used."""
    from espnet2.torch_utils.load_pretrained_model import filter_state_dict

    path, src_key, dst_key, excludes = (init_param.split(":", 3) + ["", "", ""])[:4]
    state = load_weights_only(path, map_location)
    if not isinstance(state, Mapping):
        raise ValueError(f"--init_param {path}: not a state dict (got {type(state).__name__})")
    state = state.get("module", state)  # a DeepSpeed checkpoint, as ESPnet unwraps it
    for prefix in filter(None, excludes.split(",")):
        state = {k: v for k, v in state.items() if not k.startswith(prefix)}
    if src_key:
        state = {k[len(src_key) + 1:]: v for k, v in state.items() if k.startswith(src_key + ".")}
    try:
        target = model.get_submodule(dst_key) if dst_key else model
    except AttributeError:
        raise ValueError(f"--init_param {init_param}: the model has no sub-module {dst_key!r}") from None
    target_state = target.state_dict()
    if ignore_init_mismatch:
        state = filter_state_dict(target_state, state)
    target_state.update(state)
    target.load_state_dict(target_state)


def weights_only_init_param() -> ContextManager[None]:
    """While the block runs, ``AbsTask.main_worker`` loads ``--init_param`` files with :func:`load_init_param`
    (:func:`espnet_lrsms.espnet_patches.weights_only_init_param`)."""
    return espnet_patches.weights_only_init_param(load_init_param)
