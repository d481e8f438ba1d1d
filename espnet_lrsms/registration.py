"""The one place that touches ESPnet's class registries.

ESPnet 202511 keeps the classes a YAML config may name in module-level ``ClassChoices`` objects
(``espnet2.tasks.asr.encoder_choices`` and friends) and has no plugin entry points, so adding a
class means adding it to ``<choices>.classes`` under a lower-case key before any parser or model is
built. ``import espnet_lrsms`` (and, without it, the start-up hook: :mod:`espnet_lrsms.startup_hook`)
arranges for :func:`register` to run as soon as ESPnet's task modules are loaded
(:func:`espnet_lrsms.startup_hook.register_when_espnet_loads`, :func:`after_espnet_import`): at once
when they already are, otherwise right after ``espnet2.tasks.abs_task`` / ``espnet2.tasks.asr`` finish
importing. So ``import espnet_lrsms.lowrank`` stays pure PyTorch and fast, while ``import espnet_lrsms``
followed by anything that builds an ESPnet model (``Speech2Text``, ``ASRTask``, the task modules that DDP
workers import) finds the classes registered. Registering is idempotent. Deferred registration never
raises into ESPnet's import: a failure is logged once and retried at the next import of those modules or
of ``espnet_lrsms`` until it succeeds. It imports only the modules that define the registered classes
(the video loaders without the AVSR model).
"""
import sys
from typing import List, Optional, Tuple


def _add(choices, name: str, cls: type) -> None:
    """Add ``cls`` to an ESPnet ``ClassChoices`` under ``name`` (lower-cased)."""
    key = name.lower()
    present = choices.classes.get(key)
    if present is not None and present is not cls:
        raise RuntimeError(
            f"ESPnet already has a {choices.name} called {key!r} ({present.__module__}.{present.__name__}); "
            f"espnet_lrsms cannot register {cls.__module__}.{cls.__name__} under that name"
        )
    if choices.base_type is not None and not issubclass(cls, choices.base_type):
        raise TypeError(f"{cls.__name__} is not a {choices.base_type.__name__}")
    choices.classes[key] = cls


def _add_to_dict(registry: dict, what: str, name: str, entry) -> None:
    present = registry.setdefault(name, entry)
    if present is not entry:
        raise RuntimeError(f"ESPnet already has a {what} called {name!r}; espnet_lrsms cannot register its own")


def register() -> None:
    """Make this package's classes known to ESPnet (imports ESPnet's ASR task).

    * ASR task choices: encoder ``lowrank_conformer``, decoder ``lowrank_transformer``, frontend
      ``resnet1d``, specaug ``adaptive_time_mask``;
    * schedulers (ESPnet keeps them in the plain dict ``espnet2.tasks.abs_task.scheduler_classes``):
      ``warmup_constant_sqrt_cooldown`` and ``warmup_cosine``;
    * data types of ``*.scp`` files (``espnet2.train.dataset.DATA_TYPES``): ``video_npy`` and
      ``video_mp4`` for the AVSR task.

    The AVSR task's own choices (video front end, fusion, model) and the LM task's options live in
    their task classes (:class:`espnet_lrsms.avsr.task.AVSRTask`, :class:`espnet_lrsms.lm.task.LoRALMTask`), which ESPnet's registries do not hold.
    """
    register_training_types()
    register_asr_choices()


def register_training_types() -> None:
    """Schedulers and data types, which every ESPnet task reads (needs ``espnet2.tasks.abs_task``)."""
    from espnet2.tasks import abs_task
    from espnet2.train import dataset

    from espnet_lrsms.avsr.video_io import DATA_TYPES as VIDEO_DATA_TYPES
    from espnet_lrsms.train.schedulers import SCHEDULERS

    for name, scheduler in SCHEDULERS.items():
        _add_to_dict(abs_task.scheduler_classes, "scheduler", name, scheduler)
    for name, entry in VIDEO_DATA_TYPES.items():
        _add_to_dict(dataset.DATA_TYPES, "data type", name, entry)


def register_asr_choices() -> None:
    """Encoder, decoder, front end and SpecAugment choices of ESPnet's ASR task."""
    from espnet2.tasks import asr

    from espnet_lrsms.asr.lowrank_conformer_encoder import LowRankConformerEncoder
    from espnet_lrsms.asr.lowrank_transformer_decoder import LowRankTransformerDecoder
    from espnet_lrsms.asr.resnet1d_frontend import ResNet1DFrontend
    from espnet_lrsms.asr.time_mask import AdaptiveTimeMask

    _add(asr.encoder_choices, "lowrank_conformer", LowRankConformerEncoder)
    _add(asr.decoder_choices, "lowrank_transformer", LowRankTransformerDecoder)
    _add(asr.frontend_choices, "resnet1d", ResNet1DFrontend)
    _add(asr.specaug_choices, "adaptive_time_mask", AdaptiveTimeMask)


# what to register once each ESPnet module has been executed (whichever of them is imported first)
_AFTER_IMPORT = {"espnet2.tasks.abs_task": register_training_types, "espnet2.tasks.asr": register_asr_choices}
_pending = set(_AFTER_IMPORT)  # the actions that have not succeeded yet


def after_espnet_import(name: Optional[str] = None) -> Tuple[bool, List[Tuple[str, Exception]]]:
    """Register what ESPnet's loaded task modules allow and has not been registered yet: the module ``name``
    (whose body has just run, its import not finished) and every watched module whose import has finished.
    An action that fails stays pending, to be tried again; nothing is raised (this runs inside ESPnet's
    imports). Returns (everything registered, the failures as (module, error)); the caller reports them
    (:mod:`espnet_lrsms.startup_hook`)."""
    failures = []
    for module in sorted(_pending):
        if module == name or (module in sys.modules and _finished(module)):
            try:
                _AFTER_IMPORT[module]()
            except Exception as error:  # noqa: BLE001  (one broken class must not break ESPnet's import)
                failures.append((module, error))
            else:
                _pending.discard(module)
    return not _pending, failures


def _finished(name: str) -> bool:
    """Whether ``name`` has been executed to its end (not a module whose import is under way)."""
    spec = getattr(sys.modules[name], "__spec__", None)
    return not getattr(spec, "_initializing", False)
