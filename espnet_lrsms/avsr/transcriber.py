"""Transcribe an mp4 clip with a packed AVSR model (the zip of ``avsr.sh`` stage 14) in one call.

    from espnet_lrsms.avsr.transcriber import MP4Transcriber

    s2t = MP4Transcriber.from_pack("exp/avsr_<tag>/avsr_<tag>_valid.acc.ave.zip", modality="av", beam_size=10)
    s2t.transcribe("clip.mp4")                     # -> "THE WORDS"
    s2t.transcribe(speech=wave, video=rois)        # 16 kHz waveform in [-1, 1]; (T, 96, 96) mouth ROIs, 25 fps

An mp4 is read as stage 1 reads it: the first audio stream at the model's rate (16 kHz), the grey frames (brought to 25 fps
from any other frame rate), the 68-point landmarks of the bundled face detector (with its fallback) and
the mouth crop around them (``mouth_crops=True``: the video already shows the mouth, frames only resized).
``modality="audio"`` decodes neither the frames nor the faces; ``"video"`` ignores the audio. Decoding is
:class:`espnet_lrsms.avsr.inference.AVSRSpeech2Text` (ESPnet's ``Speech2Text``: joint CTC/attention beam
search), which decodes the streams of one data directory entry; this class adds reading them from an mp4.
"""
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from espnet_lrsms.avsr.roi import ROI_SIZE, crop_mouth_rois, resize_frames
from espnet_lrsms.avsr.video_io import read_audio_mp4, read_video_mp4
from espnet_lrsms.avsr.inference import AVSRSpeech2Text, check_modality, unpack_avsr_pack

FS = 16000


class MP4Transcriber:
    """A packed (or trained) AVSR model's decoder (:class:`AVSRSpeech2Text`) and the crop settings of stage 1.

    Args:
        asr_train_config, asr_model_file: the training ``config.yaml`` and checkpoint (:meth:`from_pack`
            finds them in the pack).
        modality: ``av``, ``audio`` or ``video``.
        detect_upsample, detect_fallback, crop_scale, smooth_window, roi_size: as stage 1's options of the
            same names (its defaults); the model must be given crops made the way it was trained on.
        mouth_crops: the mp4s already show the mouth (stage 1's ``--roi_method as_is``).
        **decode: :class:`AVSRSpeech2Text`'s options (``beam_size``, ``ctc_weight``, ``nbest``, ``device``, ...).
    """

    def __init__(
        self,
        asr_train_config: Union[str, Path],
        asr_model_file: Optional[Union[str, Path]] = None,
        modality: str = "av",
        detect_upsample: int = 0,
        detect_fallback: int = 1,
        crop_scale: float = 2.0,
        smooth_window: int = 12,
        roi_size: int = ROI_SIZE,
        mouth_crops: bool = False,
        **decode,
    ):
        self.decoder = AVSRSpeech2Text(str(asr_train_config), None if asr_model_file is None else str(asr_model_file),
                                       modality=modality, **decode)
        self.detect_upsample, self.detect_fallback = detect_upsample, detect_fallback
        self.crop_scale, self.smooth_window, self.roi_size = crop_scale, smooth_window, roi_size
        self.mouth_crops = mouth_crops

    @property
    def modality(self) -> str:
        """``av``, ``audio`` or ``video``; may be changed between calls (one model loaded)."""
        return self.decoder.modality

    @modality.setter
    def modality(self, modality: str) -> None:
        self.decoder.modality = check_modality(modality)

    @classmethod
    def from_pack(cls, pack: Union[str, Path], unpack_dir: Optional[Union[str, Path]] = None,
                  **kwargs) -> "MP4Transcriber":
        """Load stage 14's pack (:func:`espnet_lrsms.avsr.inference.unpack_avsr_pack`: into ``unpack_dir``,
        default ``<pack without .zip>/``; a pack that names anything outside it is refused, ``ValueError``)."""
        return cls(*unpack_avsr_pack(pack, unpack_dir), **kwargs)

    def streams_of_mp4(self, mp4: Union[str, Path]) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """(speech (L,) float32 in [-1, 1] or None, mouth ROIs (T, roi_size, roi_size) uint8 or None) of ``mp4``,
        each only when the modality uses it."""
        speech = rois = None
        if self.modality != "video":
            speech = read_audio_mp4(mp4, self.decoder.fs or FS).astype(np.float32) / 32768
        if self.modality != "audio":
            frames = read_video_mp4(mp4, resample=True).astype(np.uint8)
            if self.mouth_crops:
                rois = resize_frames(frames, self.roi_size)
            else:
                from espnet_lrsms.avsr.landmarks import FaceLandmarkDetector

                detector = FaceLandmarkDetector(self.detect_upsample, self.detect_upsample + self.detect_fallback)
                landmarks, _ = detector.detect_clip(frames)
                rois = crop_mouth_rois(frames, landmarks, self.roi_size, self.crop_scale, self.smooth_window, str(mp4))
        return speech, rois

    def __call__(self, mp4: Optional[Union[str, Path]] = None, speech=None, video=None,
                 fs: Optional[int] = None) -> List[tuple]:
        """The n-best list of :class:`AVSRSpeech2Text` (text, tokens, token ids, hypothesis) for an mp4, or
        for ``speech`` (mono, [-1, 1], at the model's rate: 16 kHz; ``fs``, when given, is checked) and/or
        ``video`` (mouth ROIs, 0-255). Audio that is not mono, not finite or at another rate is refused
        (:class:`espnet_lrsms.asr.input_audio.AudioInputError` naming the mp4, or ``speech``)."""
        utt_id = "speech"
        if mp4 is not None:
            if speech is not None or video is not None:
                raise ValueError("give an mp4, or speech and/or video, not both")
            speech, video = self.streams_of_mp4(mp4)
            utt_id = str(mp4)
        if video is not None:
            video = np.asarray(video, dtype=np.float32)  # as ESPnet's video_npy loader gives it
        return self.decoder(speech=speech, video=video, fs=fs, utt_id=utt_id)

    def transcribe(self, mp4: Optional[Union[str, Path]] = None, speech=None, video=None,
                   fs: Optional[int] = None) -> str:
        """The best hypothesis' text."""
        return self(mp4, speech, video, fs)[0][0]
