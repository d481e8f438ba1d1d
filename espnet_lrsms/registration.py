"""The one place that touches ESPnet's class registries.

ESPnet 202511 keeps the classes a YAML config may name in module-level ``ClassChoices`` objects
(``espnet2.tasks.asr.encoder_choices`` and friends) and has no plugin entry points, so adding a
class means adding it to ``<choices>.classes`` under a lower-case key before any parser or model is
built. ``import espnet_lrsms`` calls :func:`register` (so do the task modules that spawned DDP
workers import, through it); it is idempotent.
"""


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
    """Make this package's classes known to ESPnet.

    * ASR task choices: encoder ``lowrank_conformer``, decoder ``lowrank_transformer``, frontend
      ``resnet1d``, specaug ``adaptive_time_mask``;
    * schedulers (ESPnet keeps them in the plain dict ``espnet2.tasks.abs_task.scheduler_classes``):
      ``warmup_constant_sqrt_cooldown`` and ``warmup_cosine``;
    * data types of ``*.scp`` files (``espnet2.train.dataset.DATA_TYPES``): ``video_npy`` and
      ``video_mp4`` for the AVSR task.

    The AVSR task's own choices (video front end, fusion, model) and the LM task's options live in
    their task classes (:mod:`espnet_lrsms.tasks`), which ESPnet's registries do not hold.
    """
    from espnet2.tasks import abs_task, asr
    from espnet2.train import dataset

    from espnet_lrsms.asr.lowrank_conformer_encoder import LowRankConformerEncoder
    from espnet_lrsms.asr.lowrank_transformer_decoder import LowRankTransformerDecoder
    from espnet_lrsms.asr.resnet1d_frontend import ResNet1DFrontend
    from espnet_lrsms.avsr.video_io import DATA_TYPES as VIDEO_DATA_TYPES
    from espnet_lrsms.train.schedulers import SCHEDULERS
    from espnet_lrsms.train.time_mask import AdaptiveTimeMask

    _add(asr.encoder_choices, "lowrank_conformer", LowRankConformerEncoder)
    _add(asr.decoder_choices, "lowrank_transformer", LowRankTransformerDecoder)
    _add(asr.frontend_choices, "resnet1d", ResNet1DFrontend)
    _add(asr.specaug_choices, "adaptive_time_mask", AdaptiveTimeMask)
    for name, scheduler in SCHEDULERS.items():
        _add_to_dict(abs_task.scheduler_classes, "scheduler", name, scheduler)
    for name, entry in VIDEO_DATA_TYPES.items():
        _add_to_dict(dataset.DATA_TYPES, "data type", name, entry)
