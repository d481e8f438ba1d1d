"""Stage 4: ESPnet's duration filter (``--min_wav_duration``/``--max_wav_duration``) on a prepared data directory.

An utterance of ``n`` samples is kept when ``int(min·fs) < n < int(max·fs)`` (:class:`DurationFilter`,
ESPnet's rule, which stage 1 also applies to its ``--filter_sets``); one whose ``text`` is empty is left out
too, as ESPnet's stage 4 does. The lengths come from ``utt2num_samples`` when the directory has one, else from the audio headers of ``wav.scp``
(``soundfile.info``, ``nj`` processes). Every per-utterance table of the directory
(every file whose keys are all utterance ids: ``wav.scp``, ``text``, ``utt2spk``, and the AVSR recipe's
``video.scp``, ``utt2num_video_frames``, ...) keeps the lines of the kept utterances, as they were;
``spk2utt`` is made again from ``utt2spk``; the left-out utterances are listed in ``filtered.txt``
(``<utt>\\t<duration and reason>``, after the lines stage 1 may have written there); other files are copied.

Two layouts. ESPnet's (asr.sh): ``source`` is the unfiltered dump of stage 3, ``dump/raw/org/<set>``, and the
filtered set is written to ``dump/raw/<set>`` (its ``wav.scp`` names the audio under ``org/<set>/data/``,
which is not copied). In place (avsr.sh, no ``source``): the unfiltered directory is kept inside the set, in
``<set>/org/`` (Kaldi's ``fix_data_dir.sh`` keeps ``<set>/.backup``). Either way a later run filters the
unfiltered set again: re-running stage 4, with the same or other bounds, always starts from the set as the
stages before wrote it. The new directory is written under a temporary name and renamed; a set left empty
raises :class:`DataPrepError` and changes nothing.
"""
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import soundfile

from espnet_lrsms.fileio import iter_kaldi_table, read_kaldi_table, replaced_on_success, split_kaldi_line
from espnet_lrsms.recipe.data_prep import FS, DataPrepError, check_in_parallel

logger = logging.getLogger(__name__)

ORIGINAL = "org"  # the unfiltered set, inside the set directory
REGENERATED = ("spk2utt",)  # made again from utt2spk
LISTINGS = ("skipped.txt", "filtered.txt")  # stage 1's lists of left-out utterances: copied (filtered.txt extended)


@dataclass(frozen=True)
class DurationFilter:
    """ESPnet's asr.sh stage 4 on training sets: an utterance of ``n`` samples is kept when
    ``int(min_seconds·fs) < n < int(max_seconds·fs)`` (``--min_wav_duration``/``--max_wav_duration``)."""

    min_seconds: float = 0.1
    max_seconds: float = 20.0
    fs: int = FS

    def __post_init__(self):
        if not 0 <= self.min_seconds < self.max_seconds:
            raise DataPrepError(
                f"--min_wav_duration {self.min_seconds} and --max_wav_duration {self.max_seconds}: "
                "need 0 <= min < max (seconds)"
            )

    def reason(self, num_samples: int) -> Optional[str]:
        """Why an utterance of ``num_samples`` is left out, or None when it is kept."""
        seconds = num_samples / self.fs
        if num_samples <= int(self.min_seconds * self.fs):
            return f"{seconds:.3f} s, not above --min_wav_duration {self.min_seconds:g}"
        if num_samples >= int(self.max_seconds * self.fs):
            return f"{seconds:.3f} s, not below --max_wav_duration {self.max_seconds:g}"
        return None


def _header(job: Tuple[str, str]) -> Tuple[int, int, str]:
    uttid, path = job
    try:
        info = soundfile.info(path)
    except Exception as error:  # noqa: BLE001 - the file and utterance are named below
        return -1, 0, f"{type(error).__name__}: {error}"
    return info.frames, info.samplerate, ""


def utterance_lengths(data_dir: Path, nj: int = 1, fs: int = 16000) -> Dict[str, int]:
    """Samples per utterance of ``data_dir``: its ``utt2num_samples``, or the headers of ``wav.scp``'s files
    (at ``fs`` Hz: a file at another rate, a command or an unreadable file raises, naming it)."""
    wav_scp = data_dir / "wav.scp"
    wavs = read_kaldi_table(wav_scp)
    counts = data_dir / "utt2num_samples"
    if counts.is_file():
        table = read_kaldi_table(counts)
        missing = sorted(set(wavs) - set(table))
        if missing:
            raise DataPrepError(f"{counts}: no length for {len(missing)} utterance(s) of {wav_scp}, e.g. {missing[0]}")
        try:
            return {uttid: int(table[uttid]) for uttid in wavs}
        except ValueError as error:
            raise DataPrepError(f"{counts}: {error}") from None
    for uttid, path in wavs.items():
        if path.endswith("|"):
            raise DataPrepError(f"{wav_scp}: {uttid} is a command ({path!r}); the duration filter reads audio headers: "
                                "dump the set first (asr.sh stage 3 writes real files and utt2num_samples)")
    jobs = list(wavs.items())
    headers = check_in_parallel(_header, jobs, nj, f"durations {data_dir.name}", "utt", chunksize=64)
    lengths = {}
    for (uttid, path), (frames, rate, problem) in zip(jobs, headers):
        if problem:
            raise DataPrepError(f"{wav_scp}: {uttid}: cannot read the header of {path} ({problem})")
        if rate != fs:
            raise DataPrepError(f"{wav_scp}: {uttid}: {path} is at {rate} Hz, expected {fs} Hz")
        lengths[uttid] = frames
    return lengths


def utterance_tables(source: Path, uttids: set) -> Tuple[List[Path], List[Path]]:
    """(per-utterance tables, other entries) of ``source``, ``org/`` left out."""
    tables, others = [], []
    for path in sorted(source.iterdir()):
        if path.name == ORIGINAL or path.name in REGENERATED:
            continue
        if path.is_file() and path.name not in LISTINGS:
            try:
                keys = [key for _, key, _ in iter_kaldi_table(path)]
            except ValueError:  # not a text table
                keys = []
            if keys and set(keys) <= uttids:
                tables.append(path)
                continue
        others.append(path)
    return tables, others


def filter_data_dir(data_dir: Path, durations: DurationFilter = DurationFilter(), nj: int = 1,
                    source: Optional[Path] = None) -> Tuple[int, int]:
    """Apply ``durations`` to the set ``source`` (ESPnet's ``dump/raw/org/<set>``), writing ``data_dir``; without
    ``source``, to ``data_dir`` in place (see the module docstring); returns ``(kept, left out)``."""
    data_dir = Path(data_dir)
    in_place = source is None
    if in_place:
        source = data_dir / ORIGINAL if (data_dir / ORIGINAL / "wav.scp").is_file() else data_dir
    source = Path(source)
    for name in ("wav.scp", "utt2spk"):
        if not (source / name).is_file():
            raise DataPrepError(f"{source / name}: no such file ({'stage 1' if in_place else 'stage 3'} makes it)")
    lengths = utterance_lengths(source, nj, durations.fs)
    reasons = {uttid: durations.reason(n) for uttid, n in lengths.items()}
    if (source / "text").is_file():  # ESPnet's stage 4 removes empty transcripts too
        text = read_kaldi_table(source / "text")
        for uttid in reasons:
            if reasons[uttid] is None and not text.get(uttid, "x"):
                reasons[uttid] = f"{lengths[uttid] / durations.fs:.3f} s, empty transcript"
    kept = {uttid for uttid, reason in reasons.items() if reason is None}
    left_out = [f"{uttid}\t{reason}\n" for uttid, reason in sorted(reasons.items()) if reason is not None]
    bounds = f"--min_wav_duration {durations.min_seconds:g} --max_wav_duration {durations.max_seconds:g}"
    if not kept:
        raise DataPrepError(f"set {data_dir.name}: the duration filter ({bounds}) leaves none of its "
                            f"{len(lengths)} utterances (shortest {min(lengths.values()) / durations.fs:.3f} s, "
                            f"longest {max(lengths.values()) / durations.fs:.3f} s)")
    tables, others = utterance_tables(source, set(lengths))
    with replaced_on_success(data_dir) as tmp:
        if in_place:
            shutil.copytree(source, tmp / ORIGINAL, symlinks=True, ignore=shutil.ignore_patterns(ORIGINAL))
        else:
            tmp.mkdir()
            others = [path for path in others if not path.is_dir()]  # the audio stays in the dump of stage 3
        for path in tables:
            with open(path, encoding="utf-8") as f:
                lines = [line for line in f if split_kaldi_line(line)[0] in kept]
            (tmp / path.name).write_text("".join(lines), encoding="utf-8")
        for path in others:
            if path.is_dir() and not path.is_symlink():
                shutil.copytree(path, tmp / path.name, symlinks=True)
            else:
                shutil.copy2(path, tmp / path.name, follow_symlinks=False)
        spk2utt: Dict[str, List[str]] = {}
        for uttid, speaker in sorted(read_kaldi_table(tmp / "utt2spk").items()):
            spk2utt.setdefault(speaker, []).append(uttid)
        (tmp / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())), encoding="utf-8")
        earlier = (source / "filtered.txt").read_text(encoding="utf-8") if (source / "filtered.txt").is_file() else ""
        (tmp / "filtered.txt").write_text(earlier + "".join(left_out), encoding="utf-8")
    seconds = sum(lengths[u] for u in kept) / durations.fs
    logger.info("set %s: %d of %d utterances kept (%.2f h) with %s; %d left out, listed in %s; unfiltered set in %s",
                data_dir.name, len(kept), len(lengths), seconds / 3600, bounds, len(left_out),
                data_dir / "filtered.txt", data_dir / ORIGINAL if in_place else source)
    return len(kept), len(left_out)
