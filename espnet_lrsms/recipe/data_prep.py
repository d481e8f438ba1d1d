"""Stage 1's shared parts: the utterance record, the bad-input policy, the parallel pass and the data-directory writer.

Every corpus scanner (:mod:`espnet_lrsms.recipe.librispeech`, :mod:`espnet_lrsms.recipe.lrs3`) makes
:class:`Utterance` records; ASR's stage 1 (:mod:`espnet_lrsms.recipe.prepare_data`) and AVSR's
(:mod:`espnet_lrsms.recipe.avsr_data_prep`) check them in parallel (:func:`check_in_parallel`) and hand them to
:func:`finish_set`, which applies the bad-input policy and writes the set with :func:`write_kaldi_data_dir`, the one
writer of every recipe's data directories. :class:`DataPrepError` is the error of every data stage.

Problems are collected per utterance with a kind (column 2 of ``skipped.txt``): ``duplicate_id`` (an id
twice in the transcripts),
``no_audio``, ``no_transcript``, ``unreadable``, ``empty_audio``, ``sample_rate``, ``channels`` (not mono),
``truncated`` (the whole file is decoded: it fails, or gives fewer samples than its header says).
``on_error="stop"`` raises naming them, ``"skip"`` leaves them out and logs the count per kind and where
the list is (``data/<set>/skipped.txt``). Sets given a duration filter
(:class:`espnet_lrsms.recipe.duration_filter.DurationFilter`, ESPnet's stage 4: training sets only) also leave
out utterances outside it, listed in ``data/<set>/filtered.txt``. Each data directory is written to
``<set>.tmp`` and renamed.
"""
import logging
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Protocol, Sequence

from tqdm import tqdm

from espnet_lrsms.fileio import replaced_on_success
from espnet_lrsms.workers import process_pool

logger = logging.getLogger(__name__)

FS = 16000


class DataPrepError(RuntimeError):
    """A corpus or set that cannot be prepared; the message names the path or utterance."""


@dataclass
class Utterance:
    """One utterance of a corpus scan, and what the checks found (``kind``/``problem`` set when it cannot be used)."""

    uttid: str
    speaker: str
    text: Optional[str]  # None: no transcript found
    source: Optional[Path]  # None: no audio found
    audio: Optional[Path] = None  # the file wav.scp points at (set by the checks)
    num_samples: int = 0  # of ``audio`` (set by the checks)
    kind: Optional[str] = None
    problem: Optional[str] = None

    def fail(self, kind: str, problem: str) -> "Utterance":
        self.kind, self.problem = kind, problem
        return self


class DuplicateIds:
    """Where each id was seen: ids seen in more than one place become ``duplicate_id`` problems."""

    def __init__(self, message: str):
        self.message = message  # "<what> in {}": the places joined
        self.places: Dict[str, List[str]] = {}

    def add(self, uttid: str, place: str) -> None:
        self.places.setdefault(uttid, []).append(place)

    def mark(self, utts: Mapping[str, Utterance]) -> None:
        for uttid, places in self.places.items():
            if len(places) > 1:
                utts[uttid].fail("duplicate_id", self.message.format(f"{', '.join(places[:-1])} and {places[-1]}"))


class LengthFilter(Protocol):
    """What :func:`finish_set` asks of a duration filter: :class:`espnet_lrsms.recipe.duration_filter.DurationFilter`
    (named here by its shape only: that module imports this one)."""

    min_seconds: float
    max_seconds: float

    def reason(self, num_samples: int) -> Optional[str]:
        """Why an utterance of ``num_samples`` is left out, or None when it is kept."""


def check_in_parallel(check: Callable, jobs: Sequence, nj: int, desc: str, unit: str, chunksize: int = 16,
                      initializer: Optional[Callable] = None, preload: Sequence[str] = ()) -> list:
    """``check(job)`` for every job in ``nj`` processes (:func:`espnet_lrsms.workers.process_pool`: ``check``'s
    module and ``preload`` imported once), in order, with a progress bar."""
    with process_pool(nj, initializer=initializer, preload=(check.__module__, *preload)) as pool:
        return list(tqdm(pool.map(check, jobs, chunksize=chunksize), total=len(jobs), desc=desc, unit=unit))


def finish_set(
    out: Path,
    checked: Sequence,
    tables: Callable[[list], Mapping[str, Mapping[str, str]]],
    on_error: str,
    noun: str,
    durations: Optional[LengthFilter] = None,
) -> Path:
    """Write the data directory ``out`` of checked utterances (or clips), then apply the policy.

    ``checked``: items with ``uttid``, ``speaker``, ``num_samples``, ``kind`` and ``problem``; ``tables``:
    the Kaldi tables of the good ones. ``on_error="stop"`` renames ``out`` to ``<out>.failed`` and raises
    when any has a problem; ``"skip"`` logs the count per kind. ``durations`` leaves out (and lists in
    ``filtered.txt``) the good ones outside it.
    """
    set_name = out.name
    good = [u for u in checked if u.problem is None]
    bad = sorted((u for u in checked if u.problem is not None), key=lambda u: u.uttid)
    filtered = []
    if durations is not None:
        reasons = {u.uttid: durations.reason(u.num_samples) for u in good}
        filtered = [f"{u.uttid}\t{reasons[u.uttid]}\n" for u in good if reasons[u.uttid]]
        good = [u for u in good if not reasons[u.uttid]]
    write_kaldi_data_dir(
        out, tables(good), {u.uttid: u.speaker for u in good},
        [f"{u.uttid}\t{u.kind}\t{u.problem}\n" for u in bad], filtered,
    )
    if bad:
        counts = ", ".join(f"{kind}: {n}" for kind, n in sorted(Counter(u.kind for u in bad).items()))
        examples = "; ".join(f"{u.uttid}: {u.problem}" for u in bad[:3])
        if on_error == "stop":
            failed = out.with_name(out.name + ".failed")
            shutil.move(str(out), str(failed))
            raise DataPrepError(
                f"set {set_name}: {len(bad)} of {len(checked)} {noun}s have problems ({counts}), e.g. {examples}; "
                f"full list in {failed / 'skipped.txt'} (re-run with --on_error skip to leave them out)"
            )
        logger.warning("set %s: skipped %d of %d %ss (%s), e.g. %s; list in %s",
                       set_name, len(bad), len(checked), noun, counts, examples, out / "skipped.txt")
    if filtered:
        logger.info("set %s: %d %ss outside %g-%g s left out by the duration filter; list in %s",
                    set_name, len(filtered), noun, durations.min_seconds, durations.max_seconds, out / "filtered.txt")
    if not good:
        listed = " and ".join(str(out / name) for name in ("skipped.txt", "filtered.txt") if (out / name).is_file())
        raise DataPrepError(f"set {set_name}: no usable {noun} (see {listed})")
    hours = sum(u.num_samples for u in good) / FS / 3600
    logger.info("set %s: %d %ss (%.2f h) -> %s", set_name, len(good), noun, hours, out)
    return out


def check_on_error(on_error: str) -> None:
    if on_error not in ("stop", "skip"):
        raise ValueError(f"on_error must be 'stop' or 'skip', got {on_error!r}")


def write_kaldi_data_dir(
    out: Path,
    tables: Mapping[str, Mapping[str, str]],
    utt2spk: Mapping[str, str],
    skipped: Sequence[str] = (),
    filtered: Sequence[str] = (),
) -> None:
    """An ESPnet (Kaldi-style) data directory, the one writer of every recipe's data prep.

    ``tables``: file name → {utterance id → value}, each written as ``<id> <value>`` lines sorted by
    id (as ESPnet requires); ``utt2spk`` and ``spk2utt`` come from ``utt2spk``; ``skipped``/``filtered``:
    lines of ``skipped.txt``/``filtered.txt`` (each written only when there are some). The directory is
    written under a temporary name and renamed; the ``<out>.failed`` left by an earlier stopped run is removed.
    """
    spk2utt: Dict[str, List[str]] = {}
    for uttid in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[uttid], []).append(uttid)
    files = {name: [f"{k} {v}\n" for k, v in sorted(table.items())] for name, table in tables.items()}
    files["utt2spk"] = [f"{k} {v}\n" for k, v in sorted(utt2spk.items())]
    files["spk2utt"] = [f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())]
    for name, lines in (("skipped.txt", skipped), ("filtered.txt", filtered)):
        if lines:
            files[name] = list(lines)
    with replaced_on_success(out) as tmp:
        tmp.mkdir()
        for name, lines in files.items():
            (tmp / name).write_text("".join(lines), encoding="utf-8")
    failed = out.with_name(out.name + ".failed")
    if failed.exists():
        shutil.rmtree(failed)
