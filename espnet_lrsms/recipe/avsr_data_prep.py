"""AVSR stage 1: LRS3 mp4 clips → ``data/<set>/{wav.scp,video.scp,text,utt2spk,spk2utt}``.

Per clip ``<LRS3>/<split>/<speaker>/<clip>.mp4`` (+ ``.txt``; the layout, the ids and the ``train``/``dev``
sets of :func:`espnet_lrsms.recipe.lrs3.scan_lrs3`; ``<name>`` below is the clip, ``pretrain_<clip>`` in
``pretrain``):

- ``<data_dir>/av/<set>/audio/<speaker>/<name>.wav``: the first audio stream, 16 kHz mono 16-bit;
- ``<data_dir>/av/<set>/roi/<speaker>/<name>.npy``: uint8 ``(T, 96, 96)`` grey mouth crops, one per
  video frame at 25 frames/s (a video at another rate is brought to it first, LRS3's own clips as those of
  the extra corpora: :func:`espnet_lrsms.avsr.video_io.read_video_mp4_resampled`; the count per set and
  source rate is logged), made by :mod:`espnet_lrsms.avsr.roi` around mouth landmarks or from the frames
  as they are. ``roi_method``:

  - ``"landmarks"``: the user's landmark files (``landmarks_dir``, e.g. Auto-AVSR's LRS3 landmarks);
  - ``"detect"``: landmarks found by :class:`espnet_lrsms.avsr.landmarks.FaceLandmarkDetector` (dlib,
    models inside PyPI packages), kept as ``<data_dir>/av/<set>/landmarks/<split>/<speaker>/<clip>.npy``
    — a directory that can be given back as ``landmarks_dir``;
  - ``"auto"`` (the recipe's default): ``"landmarks"`` when ``landmarks_dir`` is given, else ``"detect"``;
  - ``"as_is"``: the video already shows the mouth; frames are only resized.

Both files are written under a temporary name and renamed once the clip has passed every check, so
they are a cache: a re-run (after an interruption, or with more sets) reads their headers (and the
``<name>.json`` next to the ROI: the detection report, the source frame rate) instead of decoding again.
The ROI settings are kept in ``av/<set>/roi/settings.json``; other settings discard
the cached ROIs.

A clip with a problem is never dropped silently. Kinds (column 2 of ``skipped.txt``):
``duplicate_id`` (one id for two clips), ``no_transcript``, ``no_mp4``, ``unreadable`` (PyAV cannot open or decode it), ``no_audio``,
``no_video``, ``no_landmarks`` (no landmark file), ``bad_landmarks`` (unreadable, or points
not finite or far outside the frame), ``no_face``,
``length_mismatch`` (audio and video differ by more than ``max_frame_mismatch`` 40 ms frames, or the
landmarks do not have one entry per video frame). ``on_error="stop"`` raises naming the clips and
files; ``"skip"`` leaves them out, writes ``data/<set>/skipped.txt`` (``<utt>\\t<kind>\\t<message>``)
and logs the count per kind (the policy, the parallel pass and the writer are
:mod:`espnet_lrsms.recipe.data_prep`'s, shared with ASR).
"""
import json
import logging
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np
import soundfile
from typeguard import typechecked

from espnet_lrsms.avsr.roi import (
    LandmarkError,
    NoFaceError,
    crop_mouth_rois,
    find_landmark_file,
    read_landmarks,
    resize_frames,
)
from espnet_lrsms.avsr.video_io import FRAME_RATE, VideoError, read_audio_mp4, read_video_mp4_resampled
from espnet_lrsms.fileio import replaced_on_success
from espnet_lrsms.recipe.data_prep import DataPrepError, check_in_parallel, check_on_error, finish_set
from espnet_lrsms.recipe.duration_filter import DurationFilter
from espnet_lrsms.recipe.lrs3 import clean_transcript, clip_name, lrs3_text, scan_lrs3
from espnet_lrsms.recipe.roi_settings import ROI_METHODS, RoiSettings  # noqa: F401  (the stage's settings)

logger = logging.getLogger(__name__)

FS = 16000
SAMPLES_PER_FRAME = FS // FRAME_RATE  # 640: one video frame = one audio front-end frame
@dataclass
class AVClip:
    """One clip and what stage 1 made of it (``problem``/``kind`` set when it cannot be used)."""

    uttid: str
    speaker: str
    text: Optional[str]
    source: Optional[Path]
    relative: Optional[Path] = None  # <split>/<speaker>/<clip>, for the landmark file
    wav: Optional[Path] = None
    roi: Optional[Path] = None
    num_samples: int = 0  # of the audio
    video_frames: int = 0
    face: Optional[Dict[str, int]] = None  # frames, found, fallback, longest_gap (landmark methods)
    resampled_from: Optional[float] = None  # the video's frame rate when it was not 25 fps (brought to 25)
    kind: Optional[str] = None
    problem: Optional[str] = None


class ClipProblem(Exception):
    """A clip that cannot be used: ``kind`` (see the module doc) and a message naming the file."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


# ------------------------------------------------------------------------------ decoding
@typechecked
def decode_audio(mp4: Path) -> np.ndarray:
    """The first audio stream of ``mp4`` as 16 kHz mono int16 samples."""
    try:
        return read_audio_mp4(mp4, FS)
    except VideoError as err:
        message = str(err)
        raise ClipProblem("unreadable" if "cannot decode" in message else "no_audio", message) from err


@typechecked
def decode_video(mp4: Path) -> Tuple[np.ndarray, Optional[float]]:
    """Grey frames ``(T, H, W)`` uint8 of ``mp4``'s first video stream at 25 frames/s, and the source's frame
    rate when it had to be brought to 25 (else None)."""
    try:
        frames, resampled_from = read_video_mp4_resampled(mp4, FRAME_RATE)
    except VideoError as err:
        message = str(err)
        raise ClipProblem("no_video" if "no video stream" in message else "unreadable", message) from err
    return frames.astype(np.uint8), resampled_from


def _save_atomic(path: Path, write) -> None:
    with replaced_on_success(path) as tmp:
        write(tmp)


def _cached_lengths(wav: Path, roi: Path) -> Optional[Tuple[int, int]]:
    if not (wav.is_file() and roi.is_file()):
        return None
    try:
        samples = soundfile.info(str(wav)).frames
        frames = np.load(roi, mmap_mode="r").shape[0]
    except Exception:  # a damaged cache entry is simply made again
        return None
    return samples, frames


@typechecked
def check_lengths(mp4: Path, audio_samples: int, video_frames: int, max_frame_mismatch: int) -> None:
    """Refuse a clip whose audio (in 40 ms frames) and video differ by more than ``max_frame_mismatch`` frames."""
    audio_frames = audio_samples // SAMPLES_PER_FRAME
    if abs(audio_frames - video_frames) > max_frame_mismatch:
        raise ClipProblem(
            "length_mismatch",
            f"{mp4}: audio {audio_samples / FS:.2f} s ({audio_frames} frames of 40 ms) but video {video_frames} "
            f"frames ({video_frames / FRAME_RATE:.2f} s); tolerance {max_frame_mismatch} frames",
        )


# -------------------------------------------------------------------------------- a clip
@typechecked
def detect_landmarks(frames: np.ndarray, clip: AVClip, out_dir: Path, settings: RoiSettings) -> Tuple[np.ndarray, Path]:
    """Landmarks ``(T, 68, 2)`` of one clip from the face detector (with its fallback), saved (NaN rows: no
    face) for reuse; ``clip.face`` gets the detection report."""
    from espnet_lrsms.avsr.landmarks import FaceLandmarkDetector

    detector = FaceLandmarkDetector(settings.detect_upsample, settings.detect_upsample + settings.detect_fallback)
    landmarks, report = detector.detect_clip(frames)
    clip.face = {"frames": report.frames, "found": report.found, "fallback": report.fallback, "longest_gap": report.longest_gap}
    path = out_dir / "landmarks" / clip.relative.with_suffix(".npy")
    _save_atomic(path, lambda p: np.save(p, landmarks))
    return landmarks, path


def _face_of_file(landmarks: np.ndarray) -> Dict[str, int]:
    from espnet_lrsms.avsr.landmarks import longest_gap

    found = ~np.isnan(landmarks).any(axis=(1, 2))
    return {"frames": len(found), "found": int(found.sum()), "fallback": 0, "longest_gap": longest_gap(found)}


@typechecked
def make_rois(frames: np.ndarray, clip: AVClip, settings: RoiSettings, out_dir: Path) -> np.ndarray:
    """``(T, size, size)`` uint8 mouth crops of one clip's grey frames (``clip.face``: which frames had landmarks)."""
    if settings.method == "as_is":
        return resize_frames(frames, settings.size)
    if settings.method == "detect":
        landmarks, path = detect_landmarks(frames, clip, out_dir, settings)
        try:
            return crop_mouth_rois(frames, landmarks, settings.size, settings.crop_scale, settings.smooth_window, str(path))
        except NoFaceError as err:
            raise ClipProblem("no_face", f"{clip.source}: the face detector found no face in any of its {len(frames)} frames") from err
        except LandmarkError as err:
            raise ClipProblem("bad_landmarks", str(err)) from err
    landmark_dir = Path(settings.landmarks_dir)
    path = find_landmark_file(landmark_dir, clip.relative)
    if path is None:
        raise ClipProblem("no_landmarks", f"{clip.source}: no landmark file {landmark_dir / clip.relative}.pkl or .npy")
    try:
        landmarks = read_landmarks(path)
        clip.face = _face_of_file(landmarks)
        if len(landmarks) != len(frames):
            raise ClipProblem(
                "length_mismatch", f"{path}: landmarks for {len(landmarks)} frames but {clip.source} has {len(frames)}"
            )
        return crop_mouth_rois(frames, landmarks, settings.size, settings.crop_scale, settings.smooth_window, str(path))
    except NoFaceError as err:
        raise ClipProblem("no_face", str(err)) from err
    except LandmarkError as err:
        raise ClipProblem("bad_landmarks", str(err)) from err


def process_clip(clip: AVClip, out_dir: Path, settings: RoiSettings, max_frame_mismatch: int) -> AVClip:
    """Fill ``clip.wav``/``clip.roi`` (decoding and cropping unless cached) or ``clip.kind``/``clip.problem``."""
    try:
        if clip.problem is not None:  # found by the scan: duplicate_id, no_transcript
            raise ClipProblem(clip.kind, clip.problem)
        if clip.text is None:
            raise ClipProblem("no_transcript", f"{clip.source}: no transcript (.txt with a 'Text:' line)")
        if clip.source is None:
            raise ClipProblem("no_mp4", f"transcript without a video file ({clip.relative}.txt)")
        name = clip_name(clip.uttid, clip.speaker)  # the clip, or pretrain_<clip>: unique per speaker
        wav = out_dir / "audio" / clip.speaker / f"{name}.wav"
        roi = out_dir / "roi" / clip.speaker / f"{name}.npy"
        cached = _cached_lengths(wav, roi)
        report = roi.with_suffix(".json")  # kept with the ROI: a cached re-run reports it too
        if cached is None:
            samples = decode_audio(clip.source)
            frames, clip.resampled_from = decode_video(clip.source)
            check_lengths(clip.source, samples.size, len(frames), max_frame_mismatch)
            rois = make_rois(frames, clip, settings, out_dir)
            if clip.face is not None or clip.resampled_from is not None:
                meta = json.dumps({"face": clip.face, "resampled_from": clip.resampled_from})
                _save_atomic(report, lambda p: p.write_text(meta))
            _save_atomic(roi, lambda p: np.save(p, rois))
            _save_atomic(wav, lambda p: soundfile.write(str(p), samples, FS, subtype="PCM_16", format="WAV"))
            cached = samples.size, len(rois)
        else:
            check_lengths(clip.source, cached[0], cached[1], max_frame_mismatch)
            if report.is_file():
                meta = json.loads(report.read_text())
                if "face" not in meta:  # written before the frame rate was kept: the face report alone
                    meta = {"face": meta}
                clip.face, clip.resampled_from = meta["face"], meta.get("resampled_from")
        clip.wav, clip.roi = wav, roi
        clip.num_samples, clip.video_frames = cached
    except ClipProblem as err:
        clip.kind, clip.problem = err.kind, str(err)
    return clip


def _process_star(args) -> AVClip:
    return process_clip(*args)


# ---------------------------------------------------------------------------------- a set
def _clips_of(corpus_root: Path, set_name: str, dev_speakers: Optional[FrozenSet[str]] = None) -> List[AVClip]:
    """The set's clips as :func:`scan_lrs3` pairs them (mp4 + transcript), with their ``<split>/<speaker>/<clip>``."""
    clips = []
    for utt in scan_lrs3(corpus_root, set_name, dev_speakers):
        if utt.source is not None:
            relative = utt.source.relative_to(corpus_root).with_suffix("")
        else:  # a .txt without its .mp4 (scan_lrs3 keeps no path for it): speaker/clip, for the message
            relative = Path(utt.speaker) / utt.uttid[len(utt.speaker) + 1 :]
        clips.append(AVClip(utt.uttid, utt.speaker, utt.text, utt.source, relative, kind=utt.kind, problem=utt.problem))
    return clips


def scan_extra_corpus(root: Path) -> List[AVClip]:
    """The clips of an extra training corpus (e.g. VoxCeleb2 or AVSpeech with automatic transcripts): every
    ``<root>/**/*.mp4``, its transcript (``{LG}``-like markers removed) from ``<clip>.txt`` (a ``Text:`` line as
    LRS3's, else the first line) or from ``<root>/text`` (Kaldi: ``<id> <words>``, ``<id>`` = the path under ``root`` less ``.mp4``, ``/``
    → ``_``). Speaker: ``<root name>_<first folder>``; utterance id: ``<root name>_<id>``."""
    root = Path(root)
    if not root.is_dir():
        raise DataPrepError(f"--extra_train_sets {root}: no such directory")
    kaldi: Dict[str, str] = {}
    if (root / "text").is_file():
        for line in (root / "text").read_text(encoding="utf-8").splitlines():
            parts = line.split(maxsplit=1)
            if parts:
                kaldi[parts[0]] = parts[1] if len(parts) > 1 else ""
    clips = []
    for mp4 in sorted(root.rglob("*.mp4")):
        relative = mp4.relative_to(root).with_suffix("")
        key = "_".join(relative.parts)
        speaker = f"{root.name}_{relative.parts[0]}" if len(relative.parts) > 1 else root.name
        txt = mp4.with_suffix(".txt")
        if txt.is_file():
            content = txt.read_text(encoding="utf-8", errors="replace")
            text = lrs3_text(txt) if "Text:" in content else clean_transcript(content.split("\n", 1)[0])
        else:
            text = clean_transcript(kaldi.get(key, ""))
        clips.append(AVClip(f"{root.name}_{key}", speaker, text, mp4, Path(root.name) / relative))
    if not clips:
        raise DataPrepError(f"--extra_train_sets {root}: no .mp4 file under it")
    return clips


def _use_cache(out_dir: Path, settings: RoiSettings) -> None:
    """Discard cached ROIs made with other settings; record the current ones."""
    marker = out_dir / "roi" / "settings.json"
    wanted = json.dumps(settings.__dict__, sort_keys=True)
    if marker.is_file() and marker.read_text(encoding="utf-8") != wanted:
        logger.info("%s: ROI settings changed (%s -> %s); cropping again", out_dir / "roi", marker.read_text(), wanted)
        shutil.rmtree(out_dir / "roi")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(wanted, encoding="utf-8")


@typechecked
def prepare_av_set(
    corpus_root: Path,
    set_name: str,
    data_dir: Path,
    settings: RoiSettings = RoiSettings(),
    nj: int = 1,
    on_error: str = "stop",
    max_frame_mismatch: int = 3,
    durations: Optional[DurationFilter] = None,
    dev_speakers: Optional[FrozenSet[str]] = None,
    extra: Sequence[Path] = (),
) -> Path:
    """Write ``data_dir/<set_name>`` (wav.scp, video.scp, text, utt2spk, spk2utt, skipped.txt); returns it
    (``dev_speakers``: LRS3's dev/train split, see :func:`espnet_lrsms.recipe.lrs3.scan_lrs3`; ``extra``:
    corpora of :func:`scan_extra_corpus` merged into the set). Every clip's video is brought to 25 fps."""
    check_on_error(on_error)
    if settings.method not in ROI_METHODS:
        raise ValueError(f"roi method must be one of {ROI_METHODS}, got {settings.method!r}")
    settings = settings.resolved()
    if settings.method == "landmarks":
        if not settings.landmarks_dir:
            raise DataPrepError(
                "--roi_method landmarks needs --landmarks_dir (per clip <split>/<speaker>/<clip>.pkl or .npy); "
                "without landmark files use --roi_method detect (face detector), or as_is for videos that "
                "already show the mouth"
            )
        if not Path(settings.landmarks_dir).is_dir():
            raise DataPrepError(f"--landmarks_dir {settings.landmarks_dir}: no such directory")
    corpus_root = Path(corpus_root)
    if not corpus_root.is_dir():
        raise DataPrepError(f"corpus root {corpus_root} does not exist (set LRS3 in db.sh or the environment)")
    clips = _clips_of(corpus_root, set_name, dev_speakers)
    for root in extra:  # extra training corpora, merged into this set
        clips += scan_extra_corpus(root)
        logger.info("set %s: + %s (extra training corpus)", set_name, root)
    taken = {}
    for clip in clips:
        if clip.uttid in taken and clip.problem is None:
            clip.kind, clip.problem = "duplicate_id", f"{clip.source} has the id of {taken[clip.uttid]}"
        taken.setdefault(clip.uttid, clip.source)
    if not clips:
        raise DataPrepError(f"set {set_name}: no clips found under {corpus_root}")
    out_dir = data_dir / "av" / set_name
    _use_cache(out_dir, settings)
    jobs = [(clip, out_dir, settings, max_frame_mismatch) for clip in clips]
    done = check_in_parallel(_process_star, jobs, nj, f"av data prep {set_name}", "clip", chunksize=4)
    out = finish_set(data_dir / set_name, done, av_tables, on_error, "clip", durations)
    report_frame_rates(out.name, done)
    report_faces(out, done)
    return out


def report_frame_rates(set_name: str, clips: List[AVClip]) -> None:
    """One log line per set: how many of the usable clips were brought to 25 fps, by source frame rate."""
    good = [c for c in clips if c.problem is None]
    rates = Counter(round(c.resampled_from, 3) for c in good if c.resampled_from is not None)
    by_rate = ", ".join(f"{n} from {rate:g} fps" for rate, n in sorted(rates.items()))
    logger.info("set %s: %d of %d clips resampled to %d fps%s", set_name, sum(rates.values()), len(good), FRAME_RATE,
                f" ({by_rate})" if by_rate else "")


LONG_GAP = 12  # frames (0.48 s, the mouth-centre smoothing window): longer gaps are listed


def report_faces(out: Path, clips: List[AVClip]) -> None:
    """``out/face_report.txt``: the clips whose landmarks needed the detector's fallback or have a gap longer
    than :data:`LONG_GAP` frames (interpolated all the same), with the counts; one log line per set."""
    rows = [c for c in clips if c.problem is None and c.face and (c.face["fallback"] or c.face["longest_gap"] > LONG_GAP)]
    faced = [c for c in clips if c.problem is None and c.face]
    if not faced:
        return
    lines = ["# utt\tframes\tfound\tfound_by_fallback\twithout_face\tlongest_gap (frames)\n"] + [
        f"{c.uttid}\t{c.face['frames']}\t{c.face['found']}\t{c.face['fallback']}\t"
        f"{c.face['frames'] - c.face['found'] - c.face['fallback']}\t{c.face['longest_gap']}\n" for c in rows]
    (out / "face_report.txt").write_text("".join(lines), encoding="utf-8")
    fallback = sum(1 for c in faced if c.face["fallback"])
    gaps = sum(1 for c in faced if c.face["longest_gap"] > LONG_GAP)
    frames = sum(c.face["frames"] for c in faced)
    missing = sum(c.face["frames"] - c.face["found"] - c.face["fallback"] for c in faced)
    logger.info("set %s: landmarks of %d clips: %d needed the detector's fallback (higher upsampling), %d have a gap "
                "longer than %d frames (interpolated); %d of %d frames without a face; list in %s", out.name,
                len(faced), fallback, gaps, LONG_GAP, missing, frames, out / "face_report.txt")


def av_tables(good: List[AVClip]) -> Dict[str, Dict[str, str]]:
    """wav.scp, video.scp, text, utt2num_video_frames."""
    return {
        "wav.scp": {c.uttid: str(c.wav.resolve()) for c in good},
        "video.scp": {c.uttid: str(c.roi.resolve()) for c in good},
        "text": {c.uttid: c.text for c in good},
        "utt2num_video_frames": {c.uttid: str(c.video_frames) for c in good},
    }
