"""Audio-visual LR-SMS (paper Table III): video front end, fusion, AVSR model, video loaders, noise mixing.

The ESPnet task is :class:`espnet_lrsms.avsr.task.AVSRTask`; ``import espnet_lrsms`` registers the
video data types (``video_npy``, ``video_mp4``) and the ``warmup_cosine`` scheduler.
"""
from espnet_lrsms.avsr.espnet_model import ESPnetAVSRModel
from espnet_lrsms.avsr.fusion import MLPFusion
from espnet_lrsms.avsr.noise import make_babble, mix_at_snr, snr_db
from espnet_lrsms.avsr.video_frontend import ResNet2DVideoFrontend
from espnet_lrsms.avsr.video_io import VideoError, VideoScpReader, read_video_mp4, read_video_npy

__all__ = [
    "ESPnetAVSRModel",
    "MLPFusion",
    "ResNet2DVideoFrontend",
    "VideoError",
    "VideoScpReader",
    "make_babble",
    "mix_at_snr",
    "read_video_mp4",
    "read_video_npy",
    "snr_db",
]
