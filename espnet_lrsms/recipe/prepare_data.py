"""Stage 1 of the recipes: corpus layout → ESPnet data directories ``data/<set>/{wav.scp,text,utt2spk,spk2utt}``.

One entry per corpus, called by that corpus' ``local/data.sh`` (through ``espnet_lrsms.bin.prepare_data <corpus>``):
:func:`prepare_librispeech` and :func:`prepare_lrs3` (its ``task="avsr"``: video and mouth ROIs too, made by
:mod:`espnet_lrsms.recipe.avsr_data_prep`). The layouts, set names and ids are those of the scanners
(:mod:`espnet_lrsms.recipe.librispeech`, :mod:`espnet_lrsms.recipe.lrs3`); :func:`prepare_set` takes a scanner,
pairs audio and transcripts and checks every audio file (:func:`check_audio`, decoding LRS3's mp4 audio to 16 kHz
mono FLAC, cached per clip in ``data/audio/<set>/``). Both share the parallel pass, the bad-input policy, the summary
and the writer of :mod:`espnet_lrsms.recipe.data_prep` (its docstring lists the kinds of problem and the policy).
Sets given a :class:`espnet_lrsms.recipe.duration_filter.DurationFilter` (ESPnet's stage 4: training sets only)
also leave out utterances outside it, listed in ``data/<set>/filtered.txt``.
"""
from pathlib import Path
from functools import partial
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence

import soundfile

from espnet_lrsms.recipe.data_prep import (
    FS,
    DataPrepError,
    Utterance,
    check_in_parallel,
    check_on_error,
    finish_set,
)
from espnet_lrsms.recipe.duration_filter import DurationFilter
from espnet_lrsms.recipe.librispeech import scan_librispeech
from espnet_lrsms.recipe.lrs3 import clip_name, decode_mp4_audio, lrs3_dev_speakers, scan_lrs3

if TYPE_CHECKING:
    from espnet_lrsms.recipe.roi_settings import RoiSettings

TASKS = ("asr", "avsr")
Scan = Callable[[Path, str], List[Utterance]]  # (corpus root, set name) -> the set's utterances


def decoded_frames(path: Path) -> int:
    """Samples (per channel) that decoding the whole file gives, read block by block."""
    return sum(len(block) for block in soundfile.blocks(str(path), blocksize=1 << 16, dtype="int16"))


def check_audio(utt: Utterance, audio_dir: Optional[Path]) -> Utterance:
    """Fill ``utt.audio`` and ``utt.num_samples`` (decoding mp4 into ``audio_dir`` when needed, and
    decoding the whole file to find truncation) or ``utt.kind``/``utt.problem``."""
    if utt.problem:
        return utt
    if utt.source is None:
        return utt.fail("no_audio", "transcript without audio")
    if utt.text is None:
        return utt.fail("no_transcript", f"audio without transcript ({utt.source})")
    try:
        if utt.source.suffix == ".mp4":
            target = audio_dir / utt.speaker / f"{clip_name(utt.uttid, utt.speaker)}.flac"
            if not target.is_file():  # cached: a re-run continues where it stopped
                decode_mp4_audio(utt.source, target)
            path = target
        else:
            path = utt.source
        info = soundfile.info(str(path))
    except DataPrepError as err:
        return utt.fail("no_audio", str(err))
    except ImportError:  # a missing package is the installation's fault, not this utterance's
        raise
    except Exception as err:  # soundfile/PyAV errors: unreadable file
        return utt.fail("unreadable", f"unreadable audio ({utt.source}): {type(err).__name__}: {err}")
    if info.frames == 0:
        return utt.fail("empty_audio", f"zero-length audio ({path})")
    if info.samplerate != FS:
        return utt.fail("sample_rate", f"{info.samplerate} Hz audio, expected {FS} ({path})")
    if info.channels != 1:
        return utt.fail("channels", f"{info.channels} channels, expected mono ({path})")
    try:
        frames = decoded_frames(path)
    except Exception as err:  # libsndfile: "flac decoder lost sync" and the like
        return utt.fail("truncated", f"truncated or damaged audio ({path}): {type(err).__name__}: {err}")
    if frames < info.frames:
        return utt.fail("truncated", f"truncated or damaged audio ({path}): "
                                     f"{frames} of the {info.frames} samples its header announces")
    utt.audio, utt.num_samples = path, frames
    return utt


def _check_star(args):
    return check_audio(*args)


def prepare_set(
    scan: Scan,
    corpus_root: Path,
    set_name: str,
    data_dir: Path,
    nj: int = 1,
    on_error: str = "stop",
    durations: Optional[DurationFilter] = None,
) -> Path:
    """Write the ASR data directory ``data_dir/<set_name>`` of the utterances ``scan(corpus_root, set_name)``
    finds (e.g. :func:`scan_librispeech`); returns its path."""
    check_on_error(on_error)
    corpus_root = Path(corpus_root)
    if not corpus_root.is_dir():
        raise DataPrepError(f"corpus root {corpus_root} does not exist")
    utts = scan(corpus_root, set_name)
    if not utts:
        raise DataPrepError(f"set {set_name}: no utterances found under {corpus_root}")
    audio_dir = data_dir / "audio" / set_name  # decoded LRS3 audio, kept across re-runs
    checked = check_in_parallel(_check_star, [(u, audio_dir) for u in utts], nj, f"data prep {set_name}", "utt")
    return finish_set(data_dir / set_name, checked, audio_tables, on_error, "utterance", durations)


def audio_tables(good: Sequence[Utterance]) -> Dict[str, Dict[str, str]]:
    """wav.scp and text of the audio recipes."""
    return {"wav.scp": {u.uttid: str(u.audio.resolve()) for u in good}, "text": {u.uttid: u.text for u in good}}


def _checked_sets(corpus_root: Path, root_name: str, sets: Sequence[str], filter_sets: Sequence[str]) -> List[str]:
    """``sets`` once each, in order, after checking the corpus root (``root_name``: its db.sh variable)."""
    if not Path(corpus_root).is_dir():
        raise DataPrepError(f"corpus root {corpus_root} does not exist (set {root_name} in db.sh or the environment)")
    sets = list(dict.fromkeys(sets))
    unknown = [s for s in filter_sets if s not in sets]
    if unknown:
        raise DataPrepError(f"--filter_sets {' '.join(unknown)}: not among --sets {' '.join(sets)}")
    return sets


def prepare_librispeech(
    corpus_root: Path,
    sets: Sequence[str],
    data_dir: Path,
    nj: int = 1,
    on_error: str = "stop",
    filter_sets: Sequence[str] = (),
    durations: DurationFilter = DurationFilter(),
) -> List[Path]:
    """LibriSpeech's ``sets`` (ESPnet's names: ``train_clean_100``, ``train_960``, ``dev``, ...) into
    ``data_dir/<set>``; ``durations`` applies to ``filter_sets`` only (ESPnet filters training sets, never test sets)."""
    sets = _checked_sets(corpus_root, "LIBRISPEECH", sets, filter_sets)
    return [prepare_set(scan_librispeech, corpus_root, s, data_dir, nj, on_error,
                        durations if s in filter_sets else None) for s in sets]


def prepare_lrs3(
    task: str,
    corpus_root: Path,
    sets: Sequence[str],
    data_dir: Path,
    nj: int = 1,
    on_error: str = "stop",
    filter_sets: Sequence[str] = (),
    durations: DurationFilter = DurationFilter(),
    roi: Optional["RoiSettings"] = None,
    max_frame_mismatch: int = 3,
    valid_speakers: Optional[Path] = None,
    extra_train_sets: Sequence[Path] = (),
    extra_into: str = "train",
) -> List[Path]:
    """LRS3's ``sets`` (``train``, ESPnet's speaker-disjoint ``dev``, ``test``, or the splits) into ``data_dir/<set>``.

    ``task="asr"``: audio and text; ``"avsr"``: also mouth ROIs made with ``roi`` (see
    :func:`espnet_lrsms.recipe.avsr_data_prep.prepare_av_set`). ``durations`` applies to ``filter_sets`` only.
    ``train`` and ``dev`` use one list of dev speakers (:func:`lrs3_dev_speakers`: ``valid_speakers``, or
    ESPnet's rule), kept in ``data_dir/lrs3_dev_speakers.txt``. ``extra_train_sets`` (AVSR): directories of mp4
    clips with transcripts, prepared like LRS3 and merged into the set ``extra_into``.
    """
    if task not in TASKS:
        raise DataPrepError(f"--task {task!r}: expected one of {TASKS}")
    sets = _checked_sets(corpus_root, "LRS3", sets, filter_sets)
    dev_speakers = None
    if valid_speakers is not None or {"train", "dev", "val"} & set(sets):
        dev_speakers = lrs3_dev_speakers(Path(corpus_root), Path(data_dir), valid_speakers)
    if task == "avsr":
        from espnet_lrsms.recipe.avsr_data_prep import RoiSettings, prepare_av_set  # torch and ESPnet: AVSR only

        roi = roi or RoiSettings()
        if extra_train_sets and extra_into not in sets:
            raise DataPrepError(f"--extra_train_sets merge into {extra_into!r}, "
                                f"which is not among --sets {' '.join(sets)}")
        return [
            prepare_av_set(corpus_root, s, data_dir, roi, nj, on_error, max_frame_mismatch,
                           durations if s in filter_sets else None, dev_speakers,
                           [Path(d) for d in extra_train_sets] if s == extra_into else ())
            for s in sets
        ]
    if extra_train_sets:
        raise DataPrepError("--extra_train_sets needs --task avsr (audio-visual clips)")
    scan = partial(scan_lrs3, dev_speakers=dev_speakers)
    return [prepare_set(scan, corpus_root, s, data_dir, nj, on_error, durations if s in filter_sets else None)
            for s in sets]
