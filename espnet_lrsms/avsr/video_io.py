"""Reading mouth-crop videos listed in a ``video.scp`` (ESPnet data types ``video_npy``, ``video_mp4``).

A ``video.scp`` sits next to ``wav.scp`` and has the same ``<utt_id> <path>`` lines::

    spk1_00001 /data/lrs3_rois/spk1/00001.npy
    spk1_00002 /data/lrs3_rois/spk1/00002.npy

- ``video_npy``: one ``.npy`` file per clip (or an ``.npz`` holding one array, or the key ``video``)
  of grey frames, shape (T, H, W), dtype uint8 (values 0–255) or float in [0, 255]; 25 frames/s.
- ``video_mp4``: any video file PyAV decodes (mp4, avi, …); every frame is converted to grey
  (PyAV's ``gray`` pixel format). The stream must be at 25 frames/s.

Either way the loader gives a float32 array (T, H, W) holding 0–255 grey values (ESPnet's dataset
accepts only float or signed-integer arrays); the video front end crops and normalises.

    --train_data_path_and_name_and_type data/train/video.scp,video,video_npy
"""
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple, Union

import numpy as np
from espnet2.fileio.read_text import read_2columns_text

FRAME_RATE = 25


class VideoError(ValueError):
    """A video file or scp entry that cannot be used; the message names the file and the problem."""


def _check_frames(array: np.ndarray, path: str) -> np.ndarray:
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise VideoError(f"{path}: expected grey frames of shape (T, H, W), got shape {array.shape}")
    if array.shape[0] == 0:
        raise VideoError(f"{path}: the video has no frames")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise VideoError(f"{path}: expected uint8 or float pixels, got dtype {array.dtype}")
    return array.astype(np.float32)


def read_video_npy(path: Union[str, Path]) -> np.ndarray:
    """(T, H, W) float32 grey frames from a ``.npy`` file or an ``.npz`` archive."""
    path = str(path)
    if not Path(path).is_file():
        raise VideoError(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise VideoError(f"{path}: cannot read as .npy/.npz ({err})") from err
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            names = list(loaded.files)
            if "video" in names:
                array = loaded["video"]
            elif len(names) == 1:
                array = loaded[names[0]]
            else:
                raise VideoError(f"{path}: an .npz with several arrays {names} needs one named 'video'")
    else:
        array = loaded
    return _check_frames(array, path)


def read_video_mp4(path: Union[str, Path], frame_rate: int = FRAME_RATE, resample: bool = False) -> np.ndarray:
    """(T, H, W) float32 grey frames decoded with PyAV; the video stream must be at ``frame_rate``, or, with
    ``resample``, is brought to it (:func:`read_video_mp4_resampled`)."""
    return _read_video_mp4(path, frame_rate, resample)[0]


def read_video_mp4_resampled(path: Union[str, Path], frame_rate: int = FRAME_RATE) -> Tuple[np.ndarray, Optional[float]]:
    """(T, H, W) float32 grey frames at ``frame_rate`` and the source's frame rate when it was another (else
    None): frame k shows the source frame on screen at time k / ``frame_rate`` (frames dropped or repeated,
    as ffmpeg's ``fps`` filter does), T = round(duration · ``frame_rate``)."""
    return _read_video_mp4(path, frame_rate, True)


def _read_video_mp4(path: Union[str, Path], frame_rate: int, resample: bool) -> Tuple[np.ndarray, Optional[float]]:
    import av

    path = str(path)
    if not Path(path).is_file():
        raise VideoError(f"{path}: no such file")
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate
            other_rate = rate is not None and abs(float(rate) - frame_rate) > 0.01
            if other_rate and not resample:
                raise VideoError(f"{path}: the video is at {float(rate):g} frames/s, expected {frame_rate}")
            decoded = [(frame.time, frame.to_ndarray(format="gray")) for frame in container.decode(stream)]
    except av.error.FFmpegError as err:
        raise VideoError(f"{path}: cannot decode ({err})") from err
    if not decoded:
        raise VideoError(f"{path}: the video has no frames")
    frames = [image for _, image in decoded]
    if not other_rate:
        return _check_frames(np.stack(frames), path), None
    times = np.array([t if t is not None else i / float(rate) for i, (t, _) in enumerate(decoded)])
    times -= times[0]
    duration = times[-1] + 1 / float(rate)
    targets = np.arange(int(round(duration * frame_rate))) / frame_rate
    index = np.clip(np.searchsorted(times, targets + 1e-6, side="right") - 1, 0, len(frames) - 1)
    return _check_frames(np.stack([frames[i] for i in index]), path), float(rate)


def read_audio_mp4(path: Union[str, Path], sample_rate: int = 16000) -> np.ndarray:
    """The first audio stream of a video file as mono int16 samples at ``sample_rate`` (PyAV)."""
    import av

    path = str(path)
    if not Path(path).is_file():
        raise VideoError(f"{path}: no such file")
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise VideoError(f"{path}: no audio stream")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
            chunks = []
            for frame in container.decode(container.streams.audio[0]):
                chunks += [r.to_ndarray().reshape(-1) for r in resampler.resample(frame)]
            chunks += [r.to_ndarray().reshape(-1) for r in resampler.resample(None)]
    except av.error.FFmpegError as err:
        raise VideoError(f"{path}: cannot decode ({err})") from err
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    if samples.size == 0:
        raise VideoError(f"{path}: the audio stream is empty")
    return samples


class VideoScpReader:
    """Lazy ``utt_id → (T, H, W)`` float32 mapping over a ``video.scp`` (an ESPnet loader).

    Args:
        scp: the ``<utt_id> <path>`` file.
        reader: :func:`read_video_npy` or :func:`read_video_mp4`.
    """

    def __init__(self, scp: Union[str, Path], reader=read_video_npy):
        self.scp = str(scp)
        self.reader = reader
        self.paths: Dict[str, str] = read_2columns_text(scp)

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            path = self.paths[key]
        except KeyError:
            raise KeyError(f"{self.scp}: no entry for utterance {key!r}") from None
        try:
            return self.reader(path)
        except VideoError as err:
            raise VideoError(f"{self.scp}, utterance {key}: {err}") from err

    def __contains__(self, key) -> bool:
        return key in self.paths

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def keys(self):
        return self.paths.keys()


def video_npy_loader(path: str) -> VideoScpReader:
    return VideoScpReader(path, read_video_npy)


def video_mp4_loader(path: str) -> VideoScpReader:
    return VideoScpReader(path, read_video_mp4)


DATA_TYPES = {
    "video_npy": dict(
        func=video_npy_loader,
        kwargs=[],
        help="Grey mouth crops, one .npy (T, H, W) uint8 per clip, 25 frames/s.\n\n"
        "   utterance_id_a a.npy\n   utterance_id_b b.npy\n   ...",
    ),
    "video_mp4": dict(
        func=video_mp4_loader,
        kwargs=[],
        help="Mouth-crop videos decoded with PyAV and converted to grey, 25 frames/s.\n\n"
        "   utterance_id_a a.mp4\n   utterance_id_b b.mp4\n   ...",
    ),
}
