"""Stage 3 (ESPnet's ``--feats_type raw``): a data directory's audio as real files at one sampling rate.

ESPnet's ``format_wav_scp.sh``, without sox: every ``wav.scp`` entry is read as Kaldi reads it — a command
ending in ``|`` (run by the shell; its output read by libsndfile: WAV, FLAC, ...), an ark with an offset
(``foo.ark:123``, through kaldiio) or a plain file (soundfile). With a ``segments`` file
(``<utt> <recording> <start> <end>``, seconds; end ``-1``: to the end of the recording, as in Kaldi) each
recording is read once and cut; the utterance ids are then the segment ids. Audio at another rate is
resampled to ``fs`` (``torchaudio.functional.resample``) and written as 16-bit ``<out_dir>/data/<utt>.<flac|wav>``. A plain file that is already mono at ``fs``, with no
segments, is referenced as it is (its path in the new ``wav.scp``, nothing copied; ESPnet's
``format_wav_scp.py`` does the same) — the log says how many.

An entry that is not mono, holds NaN or infinite samples, is empty or cannot be read is a fault named with
its file and line (``data/<set>/wav.scp:12: utt3: 2 channels ...``): ``on_error="stop"`` raises
:class:`DataPrepError` and writes nothing, ``"skip"`` leaves those utterances out, listed in
``<out_dir>/skipped.txt`` (after the lines stage 1 may have written there).

``out_dir`` gets ``wav.scp``, ``utt2num_samples`` (samples at ``fs``: what stage 4 filters on), the
per-utterance tables of the source (``text``, ``utt2spk``, ... with the kept utterances; ``utt2spk`` maps each
utterance to itself when the source has none), ``spk2utt`` made again, and ``feats_type`` (``raw``). Tables
keyed by recording (``reco2dur``, ``reco2file_and_channel``) and ``utt2dur`` are not carried over. The whole
directory, audio included, is written under a temporary name and renamed.
"""
import io
import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile

from espnet_lrsms.fileio import iter_kaldi_table, read_kaldi_table, replaced_on_success, split_kaldi_line
from espnet_lrsms.recipe.data_prep import DataPrepError, check_in_parallel, check_on_error
from espnet_lrsms.recipe.duration_filter import LISTINGS, utterance_tables

logger = logging.getLogger(__name__)

AUDIO_FORMATS = ("flac", "wav")  # ESPnet's wav.ark and flac.ark are not written here
FEATS_TYPES = ("raw",)
NOT_CARRIED = ("wav.scp", "segments", "reco2dur", "reco2file_and_channel", "utt2dur", "utt2num_samples", "spk2utt",
               "feats_type")
MAX_LISTED = 5  # faults named in one error message
TO_THE_END = -1.0  # a segments end time meaning "to the end of the recording" (Kaldi's and kaldiio's)


def parse_fs(value: Union[str, int]) -> int:
    """A sampling rate as ESPnet's ``--fs`` takes it: ``16k``, ``16000`` or ``8K`` → Hz."""
    import humanfriendly

    try:
        rate = int(humanfriendly.parse_size(str(value)))
    except (humanfriendly.InvalidSize, ValueError):
        raise DataPrepError(f"--fs {value!r}: not a sampling rate (e.g. 16k or 16000)") from None
    if rate <= 0:
        raise DataPrepError(f"--fs {value!r}: a sampling rate must be positive")
    return rate


@dataclass
class Recording:
    """One ``wav.scp`` entry and the utterances cut from it: ``(uttid, start s, end s, where)``; without
    ``segments``, one utterance, the recording itself (``start`` None); ``end`` None: to the end."""

    key: str
    source: str
    where: str  # "<wav.scp>:<line>"
    utterances: List[Tuple[str, Optional[float], Optional[float], str]] = field(default_factory=list)


def read_recordings(data_dir: Path) -> List[Recording]:
    """The recordings of ``data_dir/wav.scp`` with their utterances (from ``segments`` when there is one)."""
    wav_scp = data_dir / "wav.scp"
    if not wav_scp.is_file():
        raise DataPrepError(f"{wav_scp}: no such file (stage 1 makes it)")
    recordings: Dict[str, Recording] = {}
    try:
        for line, key, value in iter_kaldi_table(wav_scp):
            if key in recordings:
                raise DataPrepError(f"{wav_scp}:{line}: {key} appears again (first at {recordings[key].where})")
            if not value:
                raise DataPrepError(f"{wav_scp}:{line}: {key} names no audio")
            recordings[key] = Recording(key, value, f"{wav_scp}:{line}")
        segments = data_dir / "segments"
        if not segments.is_file():
            for rec in recordings.values():
                rec.utterances.append((rec.key, None, None, rec.where))
            return list(recordings.values())
        seen: Dict[str, str] = {}
        for line, uttid, value in iter_kaldi_table(segments):
            where = f"{segments}:{line}"
            fields = value.split()
            if len(fields) != 3:
                raise DataPrepError(f"{where}: expected '<utt> <recording> <start> <end>', got {uttid} {value!r}")
            if uttid in seen:
                raise DataPrepError(f"{where}: {uttid} appears again (first at {seen[uttid]})")
            seen[uttid] = where
            rec_id = fields[0]
            try:
                start, end = float(fields[1]), float(fields[2])
            except ValueError:
                raise DataPrepError(f"{where}: {uttid}: start and end must be seconds, got {fields[1]!r} {fields[2]!r}") from None
            if end == TO_THE_END:  # Kaldi's extract-segments and kaldiio: to the end of the recording
                end = None
            elif not (np.isfinite(start) and np.isfinite(end) and 0 <= start < end):
                raise DataPrepError(f"{where}: {uttid}: need 0 <= start < end (seconds; end -1: to the end of the "
                                    f"recording), got {fields[1]} {fields[2]}")
            if not (np.isfinite(start) and start >= 0):
                raise DataPrepError(f"{where}: {uttid}: need 0 <= start (seconds), got {fields[1]}")
            if rec_id not in recordings:
                raise DataPrepError(f"{where}: {uttid}: recording {rec_id} is not in {wav_scp}")
            recordings[rec_id].utterances.append((uttid, start, end, where))
    except ValueError as error:  # a line that is not UTF-8
        raise DataPrepError(str(error)) from None
    return [rec for rec in recordings.values() if rec.utterances]


def read_audio(source: str) -> Tuple[np.ndarray, int, bool]:
    """``(samples × channels float32, rate, plain file)`` of a ``wav.scp`` value; raises on failure."""
    if source.endswith("|"):
        command = source[:-1].strip()
        done = subprocess.run(command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        if done.returncode != 0:
            stderr = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise OSError(f"the command {command!r} exited with {done.returncode}"
                          + (f": {stderr[-1][:200]}" if stderr else ""))
        wave, rate = soundfile.read(io.BytesIO(done.stdout), dtype="float32", always_2d=True)
        return wave, rate, False
    if Path(source).is_file():
        wave, rate = soundfile.read(source, dtype="float32", always_2d=True)
        return wave, rate, True
    import kaldiio

    loaded = kaldiio.load_mat(source)  # foo.ark:123, as Kaldi's wav.scp allows
    if not (isinstance(loaded, tuple) and len(loaded) == 2):
        raise ValueError(f"{source} holds a matrix of shape {np.shape(loaded)}, not audio")
    rate, wave = loaded
    wave = np.asarray(wave)
    if np.issubdtype(wave.dtype, np.integer):
        wave = wave.astype(np.float32) / float(np.iinfo(wave.dtype).max + 1)
    wave = wave.astype(np.float32)
    return (wave[:, None] if wave.ndim == 1 else wave), int(rate), False


def resample(wave: np.ndarray, rate: int, fs: int) -> np.ndarray:
    """Mono ``wave`` (1-D) from ``rate`` to ``fs`` Hz (length ``ceil(n·fs/rate)``), kept inside 16-bit range."""
    if rate == fs:
        return wave
    import torch
    import torchaudio

    out = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(wave)), rate, fs)
    return out.clamp(-1.0, 1.0 - 2.0**-15).numpy()


@dataclass(frozen=True)
class FormatJob:
    recording: Recording
    audio_dir: Path  # where new files are written (the temporary directory)
    final_dir: Path  # where they will be after the rename (the paths wav.scp names)
    fs: int
    audio_format: str


def format_recording(job: FormatJob) -> List[Tuple[str, str, int, str]]:
    """``(uttid, wav.scp value, samples, fault)`` for each utterance of one recording (fault "" when fine)."""
    rec = job.recording
    try:
        wave, rate, plain = read_audio(rec.source)
    except Exception as error:  # noqa: BLE001 - libsndfile's, kaldiio's and the shell's own words, with the line
        fault = f"{rec.where}: {rec.key}: unreadable ({rec.source}): {type(error).__name__}: {str(error)[:200]}"
        return [(uttid, "", 0, fault) for uttid, _, _, _ in rec.utterances]
    if wave.shape[1] != 1:
        fault = f"{rec.where}: {rec.key}: {wave.shape[1]} channels ({rec.source}); stage 3 takes mono audio"
        return [(uttid, "", 0, fault) for uttid, _, _, _ in rec.utterances]
    wave = wave[:, 0]
    bad = int(np.count_nonzero(~np.isfinite(wave)))
    if bad:
        fault = f"{rec.where}: {rec.key}: {bad} of {wave.size} samples are NaN or infinite ({rec.source})"
        return [(uttid, "", 0, fault) for uttid, _, _, _ in rec.utterances]
    results = []
    for uttid, start, end, where in rec.utterances:
        piece = wave
        if start is not None:
            first = int(round(start * rate))
            last = wave.size if end is None else min(int(round(end * rate)), wave.size)
            piece = wave[first:last]
            if piece.size == 0:
                span = f"{start:g}-{'end' if end is None else f'{end:g}'}"
                results.append((uttid, "", 0, f"{where}: {uttid}: {span} s lies outside recording "
                                               f"{rec.key} ({wave.size / rate:.3f} s)"))
                continue
        if piece.size == 0:
            results.append((uttid, "", 0, f"{where}: {uttid}: no samples ({rec.source})"))
            continue
        if plain and start is None and rate == job.fs:
            results.append((uttid, str(Path(rec.source).resolve()), piece.size, ""))
            continue
        if "/" in uttid or uttid.startswith("."):
            results.append((uttid, "", 0, f"{where}: {uttid}: an utterance id cannot name a file"))
            continue
        out = resample(piece, rate, job.fs)
        name = f"{uttid}.{job.audio_format}"
        soundfile.write(str(job.audio_dir / name), out, job.fs, format=job.audio_format.upper(), subtype="PCM_16")
        results.append((uttid, str(job.final_dir / name), out.size, ""))
    return results


def format_data_dir(data_dir: Path, out_dir: Path, fs: Union[str, int] = 16000, audio_format: str = "flac",
                    nj: int = 1, on_error: str = "stop") -> Tuple[int, int]:
    """Write ``out_dir`` from ``data_dir`` (see the module docstring); returns ``(utterances, files written)``."""
    check_on_error(on_error)
    if audio_format not in AUDIO_FORMATS:
        raise DataPrepError(f"--audio_format {audio_format}: expected one of {', '.join(AUDIO_FORMATS)}")
    fs = parse_fs(fs)
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    recordings = read_recordings(data_dir)
    if not recordings:
        raise DataPrepError(f"{data_dir}: no utterances (wav.scp{' and segments' if (data_dir / 'segments').is_file() else ''} "
                            "name none)")
    uttids = {uttid for rec in recordings for uttid, _, _, _ in rec.utterances}
    if not (data_dir / "text").is_file():
        raise DataPrepError(f"{data_dir / 'text'}: no such file (stage 1 makes it)")
    final_dir = out_dir.resolve() / "data"
    with replaced_on_success(out_dir) as tmp:
        (tmp / "data").mkdir(parents=True)
        jobs = [FormatJob(rec, tmp / "data", final_dir, fs, audio_format) for rec in recordings]
        results = [r for rs in check_in_parallel(format_recording, jobs, nj, f"format {data_dir.name}", "rec",
                                                 chunksize=8) for r in rs]
        faults = [(uttid, fault) for uttid, _, _, fault in results if fault]
        if faults and on_error == "stop":
            listed = "; ".join(fault for _, fault in faults[:MAX_LISTED])
            more = f"; and {len(faults) - MAX_LISTED} more" if len(faults) > MAX_LISTED else ""
            raise DataPrepError(f"set {data_dir.name}: {len(faults)} of {len(results)} utterances cannot be formatted: "
                                f"{listed}{more} (fix them, or re-run with --on_error skip to leave them out)")
        kept = {uttid: (value, n) for uttid, value, n, fault in results if not fault}
        if not kept:
            raise DataPrepError(f"set {data_dir.name}: no utterance could be formatted, e.g. {faults[0][1]}")
        _write_tables(data_dir, tmp, kept, uttids)
        if not any((tmp / "data").iterdir()):  # every file referenced
            (tmp / "data").rmdir()
        if faults:
            earlier = (data_dir / "skipped.txt").read_text(encoding="utf-8") if (data_dir / "skipped.txt").is_file() else ""
            (tmp / "skipped.txt").write_text(earlier + "".join(f"{u}\tformat\t{f}\n" for u, f in sorted(faults)),
                                             encoding="utf-8")
            logger.warning("set %s: %d utterances left out (--on_error skip), e.g. %s; list in %s", data_dir.name,
                           len(faults), faults[0][1], out_dir / "skipped.txt")
    written = sum(1 for value, _ in kept.values() if value.startswith(str(final_dir)))
    hours = sum(n for _, n in kept.values()) / fs / 3600
    logger.info("set %s: %d utterances (%.2f h) -> %s: %d written as %s at %d Hz under %s, %d referenced as they are "
                "(plain mono files at %d Hz)", data_dir.name, len(kept), hours, out_dir, written, audio_format, fs,
                final_dir, len(kept) - written, fs)
    return len(kept), written


def _write_tables(source: Path, out: Path, kept: Dict[str, Tuple[str, int]], uttids: set) -> None:
    order = sorted(kept)
    (out / "wav.scp").write_text("".join(f"{u} {kept[u][0]}\n" for u in order), encoding="utf-8")
    (out / "utt2num_samples").write_text("".join(f"{u} {kept[u][1]}\n" for u in order), encoding="utf-8")
    (out / "feats_type").write_text("raw\n", encoding="utf-8")
    tables, _ = utterance_tables(source, uttids)
    tables = sorted(set(tables) | {source / name for name in ("text", "utt2spk") if (source / name).is_file()})
    for path in tables:  # text and utt2spk may name utterances that wav.scp lacks
        if path.name in NOT_CARRIED:
            continue
        with open(path, encoding="utf-8") as f:
            lines = sorted((line for line in f if split_kaldi_line(line)[0] in kept), key=lambda x: split_kaldi_line(x)[0])
        (out / path.name).write_text("".join(lines), encoding="utf-8")
    for name in LISTINGS:
        if (source / name).is_file():
            (out / name).write_text((source / name).read_text(encoding="utf-8"), encoding="utf-8")
    missing = sorted(set(order) - set(read_kaldi_table(out / "text"))) if (out / "text").is_file() else order
    if missing:
        raise DataPrepError(f"{source / 'text'}: no transcript for {len(missing)} utterance(s), e.g. {missing[0]}")
    if not (out / "utt2spk").is_file():  # ESPnet's advice when there are no speakers: each utterance its own
        (out / "utt2spk").write_text("".join(f"{u} {u}\n" for u in order), encoding="utf-8")
    utt2spk = read_kaldi_table(out / "utt2spk")
    missing = sorted(set(order) - set(utt2spk))
    if missing:
        raise DataPrepError(f"{source / 'utt2spk'}: no speaker for {len(missing)} utterance(s), e.g. {missing[0]}")
    spk2utt: Dict[str, List[str]] = {}
    for uttid in order:
        spk2utt.setdefault(utt2spk[uttid], []).append(uttid)
    (out / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())), encoding="utf-8")


def format_sets(pairs: Sequence[Tuple[Path, Path]], fs: Union[str, int] = 16000, audio_format: str = "flac",
                nj: int = 1, on_error: str = "stop") -> None:
    """:func:`format_data_dir` on each ``(data dir, out dir)``."""
    for data_dir, out_dir in pairs:
        format_data_dir(data_dir, out_dir, fs, audio_format, nj, on_error)
