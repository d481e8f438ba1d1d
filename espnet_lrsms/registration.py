"""The one place that touches ESPnet's class registries.

ESPnet 202511 keeps the classes a YAML config may name in module-level ``ClassChoices`` objects
(``espnet2.tasks.asr.encoder_choices`` and friends) and has no plugin entry points, so adding a
class means adding it to ``<choices>.classes`` under a lower-case key before any parser or model is
built. ``import espnet_lrsms`` calls :func:`register`; it is idempotent.
"""
from espnet2.train.class_choices import ClassChoices


def _add(choices: ClassChoices, name: str, cls: type) -> None:
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


def register() -> None:
    """Make this package's classes known to ESPnet's ASR task.

    encoder ``lowrank_conformer``, decoder ``lowrank_transformer``, frontend ``resnet1d``, specaug
    ``adaptive_time_mask`` and scheduler ``warmup_constant_sqrt_cooldown`` (ESPnet keeps schedulers
    in the plain dict ``espnet2.tasks.abs_task.scheduler_classes``).
    """
    from espnet2.tasks import abs_task, asr

    from espnet_lrsms.train.schedulers import WarmupConstantSqrtCooldownLR
    from espnet_lrsms.train.time_mask import AdaptiveTimeMask

    from espnet_lrsms.asr.lowrank_conformer_encoder import LowRankConformerEncoder
    from espnet_lrsms.asr.lowrank_transformer_decoder import LowRankTransformerDecoder
    from espnet_lrsms.asr.resnet1d_frontend import ResNet1DFrontend

    _add(asr.encoder_choices, "lowrank_conformer", LowRankConformerEncoder)
    _add(asr.decoder_choices, "lowrank_transformer", LowRankTransformerDecoder)
    _add(asr.frontend_choices, "resnet1d", ResNet1DFrontend)
    _add(asr.specaug_choices, "adaptive_time_mask", AdaptiveTimeMask)
    present = abs_task.scheduler_classes.setdefault("warmup_constant_sqrt_cooldown", WarmupConstantSqrtCooldownLR)
    if present is not WarmupConstantSqrtCooldownLR:
        raise RuntimeError("ESPnet already has a scheduler called 'warmup_constant_sqrt_cooldown'")
