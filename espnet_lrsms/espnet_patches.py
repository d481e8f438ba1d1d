"""The one module that changes ESPnet's (or torch's) code at run time: each patch below replaces a name that an
ESPnet 202511 function looks up in its module's globals, for the duration of a ``with`` block, and puts it back.

ESPnet offers no argument or overridable method for any of these three, so each is a patch, written against
the ESPnet release in :data:`ESPNET_VERSION`; :func:`check_espnet_version` refuses any other release before a
patch is applied (a renamed global would otherwise be patched in vain, silently).

* :func:`speech2text_tasks`: ``espnet2.bin.asr_inference.Speech2Text.__init__`` builds the ASR model with the
  module's ``ASRTask`` and a shallow-fusion LM with its ``LMTask``. ESPnet's tasks load a checkpoint with
  ``strict=False`` and ``weights_only=False``, which drops the LoRA adapters of an adapted LM silently and cannot
  build an AVSR model at all; the block makes ``Speech2Text`` build with the given tasks (this package's, which load
  exactly and weights-only).
* :func:`weights_only_init_param`: ``espnet2.tasks.abs_task.AbsTask.main_worker`` loads ``--init_param`` files with
  the module's ``load_pretrained_model``, which unpickles them (``weights_only=False``): a crafted ``.pth`` runs its
  code when training starts. The block makes it call the given weights-only loader.
* :func:`atomic_checkpoint_saves`: ``espnet2.train.trainer.Trainer.run`` (``checkpoint.pth``, ``<n>epoch.pth``) and
  ``espnet2.main_funcs.average_nbest_models.average_nbest_models`` (the averaged models) call ``torch.save`` inline,
  through their module's global ``torch``, writing in place: a kill or a full disk mid-save leaves a truncated file
  and loses the resume point. The block gives those two modules a ``torch`` whose ``save`` is the given atomic one;
  ``torch.save`` itself, and every other caller, is left alone. (``Trainer.run`` is one 360-line classmethod with
  the saves inside it: overriding it would mean copying it.)
"""
import importlib
from contextlib import contextmanager
from typing import Callable, ContextManager, Dict, Iterator

ESPNET_VERSION = "202511"


def check_espnet_version(found: str) -> None:
    """RuntimeError naming both releases unless ``found`` is :data:`ESPNET_VERSION`."""
    if found != ESPNET_VERSION:
        raise RuntimeError(f"espnet_lrsms.espnet_patches was written for ESPnet {ESPNET_VERSION}, but ESPnet {found} "
                           f"is installed: install espnet=={ESPNET_VERSION}")


@contextmanager
def module_globals(module_name: str, replacements: Dict[str, object]) -> Iterator[None]:
    """Within the block, the globals of ESPnet's module ``module_name`` named in ``replacements`` are those
    values (each must exist); afterwards they are put back."""
    import espnet

    check_espnet_version(espnet.__version__)
    module = importlib.import_module(module_name)
    missing = [name for name in replacements if not hasattr(module, name)]
    if missing:
        raise RuntimeError(f"ESPnet {ESPNET_VERSION}'s {module_name} has no {missing}: espnet_lrsms.espnet_patches "
                           "no longer matches ESPnet")
    saved = {name: getattr(module, name) for name in replacements}
    for name, value in replacements.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def speech2text_tasks(asr_task: type, lm_task: type) -> ContextManager[None]:
    """Within the block, ESPnet's ``Speech2Text`` builds its model with ``asr_task`` and a fusion LM with
    ``lm_task`` (their ``build_model_from_file``)."""
    return module_globals("espnet2.bin.asr_inference", {"ASRTask": asr_task, "LMTask": lm_task})


def weights_only_init_param(loader: Callable) -> ContextManager[None]:
    """Within the block, ``AbsTask.main_worker`` loads each ``--init_param`` with ``loader`` (the arguments of
    ESPnet's ``load_pretrained_model``: ``init_param``, ``model``, ``ignore_init_mismatch``, ``map_location``)."""
    return module_globals("espnet2.tasks.abs_task", {"load_pretrained_model": loader})


class _TorchSaving:
    """``torch`` as ESPnet's saving modules see it in :func:`atomic_checkpoint_saves`: torch's, ``save`` replaced."""

    def __init__(self, save: Callable):
        self.save = save

    def __getattr__(self, name):
        import torch

        return getattr(torch, name)


@contextmanager
def atomic_checkpoint_saves(save: Callable) -> Iterator[None]:
    """Within the block, the ``torch.save`` calls of ESPnet's trainer and model averaging are ``save``."""
    torch_saving = _TorchSaving(save)
    with module_globals("espnet2.train.trainer", {"torch": torch_saving}), \
            module_globals("espnet2.main_funcs.average_nbest_models", {"torch": torch_saving}):
        yield
