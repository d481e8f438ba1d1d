"""Stage 2: speed perturbation of a training set, as ESPnet's ``perturb_data_dir_speed.sh`` does it, without sox.

Every corpus that stage 3 reads can be perturbed: ``wav.scp`` entries that are commands (``... |``), ark offsets or
files, with or without a ``segments`` file (read by :func:`espnet_lrsms.recipe.format_audio.read_audio`).

For each factor ``f`` other than 1 (named as written, e.g. ``0.9``), every recording is resampled so that it plays
``f`` times as fast (tempo and pitch change together, like sox's ``speed`` effect; the length becomes ``L / f``)
and written as 16-bit FLAC to ``<audio_dir>/sp<f>/<recording>.flac`` (default ``<out_dir>.audio``, beside the
data directory, which is written under a temporary name and renamed). As in ESPnet's script, utterance,
speaker and recording ids get the prefix ``sp<f>-``; ``text``, ``utt2spk``, ``spk2utt``, ``utt2lang`` and
``spk2gender`` follow the new ids, ``utt2uniq`` maps each new id to its original utterance, and ``segments``
times, ``utt2dur`` and ``reco2dur`` are divided by ``f`` (Kaldi's: segments at two decimals, those no longer
than 0.01 s left out; an end of ``-1``, to the end of the recording, stays ``-1``). Factor 1 keeps the
original entries as they are (ESPnet's ``combine_data.sh`` of the set itself). The output data directory
(ESPnet names it ``<set>_sp``) holds all of them. Files already written by an earlier, interrupted run are kept
when they have the expected length.
"""
import logging
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile
import torch
import torchaudio

from espnet_lrsms.fileio import read_kaldi_table
from espnet_lrsms.recipe.data_prep import DataPrepError, check_in_parallel, check_on_error, write_kaldi_data_dir
from espnet_lrsms.recipe.format_audio import MAX_LISTED, Recording, read_audio, read_recordings

logger = logging.getLogger(__name__)

Factor = Union[str, float]
UTTERANCE_MAPPED = ("utt2lang",)  # other per-utterance tables ESPnet's script maps (text and utt2spk always)


def factor_name(factor: Factor) -> str:
    """The ``sp<f>-`` prefix's ``f``: a factor as written (``"0.9"``, as ESPnet's script uses it), or ``0.9`` →
    ``"0.9"``, ``1.10`` → ``"1.1"`` for a number."""
    return factor.strip() if isinstance(factor, str) else f"{factor:g}"


def _ratio(factor: float) -> Fraction:
    return Fraction(str(factor))


def perturbed_length(length: int, factor: float, fs: int) -> int:
    """Samples after playing ``length`` samples ``factor`` times as fast: ``ceil(length / factor)``, as
    torchaudio's resampling from ``fs·factor`` to ``fs`` Hz gives it."""
    ratio = _ratio(factor)
    return -(-length * ratio.denominator // ratio.numerator)


def speed_perturb(wave: np.ndarray, factor: float, fs: int) -> np.ndarray:
    """``wave`` (1-D, at ``fs`` Hz) played ``factor`` times as fast: read as ``fs·factor`` Hz, resampled to ``fs``
    (as the ratio ``p/q`` of ``factor``: resampled from ``fs·p`` to ``fs·q``, so any rate and factor work)."""
    ratio = _ratio(factor)
    out = torchaudio.functional.resample(torch.from_numpy(np.asarray(wave, dtype=np.float32)),
                                         fs * ratio.numerator, fs * ratio.denominator)
    return out.clamp(-1.0, 1.0 - 2.0**-15).numpy()


@dataclass(frozen=True)
class PerturbJob:
    recording: Recording
    factor: float
    target: Path


def _perturb_one(job: PerturbJob) -> str:
    """Write ``job.target``; returns the fault ("" when fine), named with ``wav.scp``'s file and line."""
    rec = job.recording
    try:
        wave, fs, _ = read_audio(rec.source)
    except Exception as error:  # noqa: BLE001 - libsndfile's, kaldiio's and the shell's own words, with the line
        return f"{rec.where}: {rec.key}: unreadable ({rec.source}): {type(error).__name__}: {str(error)[:200]}"
    if wave.shape[1] != 1:
        return f"{rec.where}: {rec.key}: expected mono audio, got {wave.shape[1]} channels ({rec.source})"
    wave = wave[:, 0]
    expected = perturbed_length(wave.size, job.factor, fs)
    if job.target.is_file() and soundfile.info(str(job.target)).frames == expected:
        return ""  # written by an earlier run
    perturbed = speed_perturb(wave, job.factor, fs)
    tmp = job.target.with_name(job.target.name + ".tmp.flac")
    soundfile.write(str(tmp), perturbed, fs, subtype="PCM_16")
    tmp.replace(job.target)
    return ""


def _check_factors(factors: Sequence[Factor]) -> List[float]:
    values = []
    for factor in factors:
        try:
            values.append(float(factor))
        except ValueError:
            raise DataPrepError(f"--speed_perturb_factors: {factor!r} is not a number in {list(factors)}") from None
    bad = [f for f in values if not math.isfinite(f) or f <= 0]
    if not factors or bad:
        raise DataPrepError(f"--speed_perturb_factors: expected positive finite factors, got {bad[0] if bad else 'none'} "
                            f"in {list(factors)}")
    if len({f for f in values}) != len(values) or len({factor_name(f) for f in factors}) != len(factors):
        raise DataPrepError(f"--speed_perturb_factors: a factor is given twice in {list(factors)}")
    return values


def _read_table(data_dir: Path, name: str) -> Optional[Dict[str, str]]:
    path = data_dir / name
    if not path.is_file():
        return None
    try:
        return read_kaldi_table(path)
    except ValueError as error:  # a line that is not UTF-8
        raise DataPrepError(str(error)) from None


def _seconds(value: float) -> str:
    return f"{value:.2f}"  # Kaldi's perturb_data_dir_speed.sh: printf %.2f


def perturb_data_dir(data_dir: Path, out_dir: Path, factors: Sequence[Factor], nj: int = 1,
                     audio_dir: Optional[Path] = None, on_error: str = "stop") -> int:
    """Write the speed-perturbed copy of ``data_dir`` to ``out_dir``; returns the number of utterances.

    ``on_error="skip"`` leaves out the perturbed copies of recordings that cannot be read (stage 3 then names
    or skips the originals, by the same option); ``"stop"`` raises naming them.
    """
    check_on_error(on_error)
    values = _check_factors(factors)
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    for name in ("wav.scp", "text", "utt2spk"):
        if not (data_dir / name).is_file():
            raise DataPrepError(f"{data_dir / name}: no such file (stage 1 makes it)")
    recordings = read_recordings(data_dir)
    segmented = (data_dir / "segments").is_file()
    text, utt2spk = _read_table(data_dir, "text"), _read_table(data_dir, "utt2spk")
    uttids = [uttid for rec in recordings for uttid, _, _, _ in rec.utterances]
    for name, table in (("text", text), ("utt2spk", utt2spk)):
        missing = [u for u in uttids if u not in table]
        if missing:
            raise DataPrepError(f"{data_dir / name}: no line for {len(missing)} utterance(s) of "
                                f"{data_dir / ('segments' if segmented else 'wav.scp')}, e.g. {missing[0]}")
    mapped = {name: _read_table(data_dir, name) for name in UTTERANCE_MAPPED}
    utt2uniq = _read_table(data_dir, "utt2uniq") or {}
    spk2gender = _read_table(data_dir, "spk2gender")
    durations = {name: _read_table(data_dir, name) for name in ("utt2dur", "reco2dur")}
    reco2file = _read_table(data_dir, "reco2file_and_channel")
    segments = _read_table(data_dir, "segments") if segmented else None  # factor 1: its lines as they are

    audio_root = (audio_dir or out_dir.with_name(out_dir.name + ".audio")).resolve()
    jobs: List[PerturbJob] = []
    plan: List[Tuple[str, float, Recording, str]] = []  # (prefix, factor, recording, its wav.scp value)
    for factor, value in zip(factors, values):
        prefix = "" if value == 1 else f"sp{factor_name(factor)}-"
        for rec in recordings:
            if value == 1:
                plan.append((prefix, value, rec, rec.source))
                continue
            if "/" in rec.key or rec.key.startswith("."):
                raise DataPrepError(f"{rec.where}: {rec.key}: a recording id cannot name a file")
            target = audio_root / f"sp{factor_name(factor)}" / f"{rec.key}.flac"
            jobs.append(PerturbJob(rec, value, target))
            plan.append((prefix, value, rec, str(target)))
    for sub in {job.target.parent for job in jobs}:
        sub.mkdir(parents=True, exist_ok=True)
    logger.info("speed perturbation of %s by %s: %d recordings to resample", data_dir, list(factors), len(jobs))
    faults = check_in_parallel(_perturb_one, jobs, nj, "speed perturbation", "rec", chunksize=8)
    failed = {(job.recording.key, job.factor): fault for job, fault in zip(jobs, faults) if fault}
    if failed and on_error == "stop":
        listed = sorted(set(failed.values()))
        more = f"; and {len(listed) - MAX_LISTED} more" if len(listed) > MAX_LISTED else ""
        raise DataPrepError(f"set {data_dir.name}: {len(listed)} recording(s) cannot be speed-perturbed: "
                            f"{'; '.join(listed[:MAX_LISTED])}{more} (fix them, or re-run with --on_error skip)")

    tables: Dict[str, Dict[str, str]] = {"wav.scp": {}, "text": {}, "utt2uniq": {}}
    tables.update({name: {} for name, table in mapped.items() if table is not None})
    tables.update({name: {} for name, table in durations.items() if table is not None})
    if segmented:
        tables["segments"] = {}
    if reco2file is not None:
        tables["reco2file_and_channel"] = {}
    speakers: Dict[str, str] = {}
    dropped = []
    for prefix, value, rec, source in plan:
        if (rec.key, value) in failed:
            continue
        new_reco = prefix + rec.key
        tables["wav.scp"][new_reco] = source
        if reco2file is not None and rec.key in reco2file:
            tables["reco2file_and_channel"][new_reco] = reco2file[rec.key]
        if durations["reco2dur"] is not None and rec.key in durations["reco2dur"]:
            tables["reco2dur"][new_reco] = _scaled(data_dir / "reco2dur", rec.key, durations["reco2dur"][rec.key], value)
        for uttid, start, end, _ in rec.utterances:
            new_id = prefix + uttid
            if segmented and value == 1:
                tables["segments"][new_id] = segments[uttid]
            elif segmented:
                first, last = start / value, None if end is None else end / value
                if last is not None and not last > first + 0.01:  # Kaldi's: too short after scaling
                    dropped.append(new_id)
                    continue
                tables["segments"][new_id] = f"{new_reco} {_seconds(first)} {'-1' if last is None else _seconds(last)}"
            tables["text"][new_id] = text[uttid]
            tables["utt2uniq"][new_id] = utt2uniq.get(uttid, uttid)
            for name, table in mapped.items():
                if table is not None and uttid in table:
                    tables[name][new_id] = table[uttid]
            if durations["utt2dur"] is not None and uttid in durations["utt2dur"]:
                tables["utt2dur"][new_id] = _scaled(data_dir / "utt2dur", uttid, durations["utt2dur"][uttid], value)
            speakers[new_id] = prefix + utt2spk[uttid]
    if spk2gender is not None:
        kept = set(speakers.values())
        tables["spk2gender"] = {prefix + speaker: gender for prefix in {p for p, _, _, _ in plan}
                                for speaker, gender in spk2gender.items() if prefix + speaker in kept}
    if dropped:
        logger.warning("set %s: %d perturbed segment(s) of at most 0.01 s left out, as Kaldi's script does, e.g. %s",
                       data_dir.name, len(dropped), dropped[0])
    if failed:
        logger.warning("set %s: the perturbed copies of %d recording(s) left out (--on_error skip), e.g. %s",
                       data_dir.name, len(failed), next(iter(failed.values())))
    write_kaldi_data_dir(out_dir, tables, speakers)
    return len(tables["text"])


def _scaled(table: Path, key: str, seconds: str, factor: float) -> str:
    """A duration of ``utt2dur``/``reco2dur`` divided by ``factor`` (Kaldi's awk ``$2/factor``, 6 digits)."""
    if factor == 1:
        return seconds
    try:
        return f"{float(seconds) / factor:.6g}"
    except ValueError:
        raise DataPrepError(f"{table}: {key}: {seconds!r} is not a number of seconds") from None
