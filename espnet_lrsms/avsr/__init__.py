"""Audio-visual LR-SMS (paper Table III): video front end, fusion, AVSR model, video loaders, noise mixing.

The ESPnet task is :class:`espnet_lrsms.avsr.task.AVSRTask`; ``import espnet_lrsms`` registers the
video data types (``video_npy``, ``video_mp4``) and the ``warmup_cosine`` scheduler. The names below are
imported when first used (PEP 562), so that registering the video loaders does not load the AVSR model.
"""
import importlib

_EXPORTS = {
    "ESPnetAVSRModel": "espnet_model",
    "MLPFusion": "fusion",
    "ResNet2DVideoFrontend": "video_frontend",
    "VideoError": "video_io",
    "VideoScpReader": "video_io",
    "make_babble": "noise",
    "mix_at_snr": "noise",
    "read_video_mp4": "video_io",
    "read_video_npy": "video_io",
    "snr_db": "noise",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
