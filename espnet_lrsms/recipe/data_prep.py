"""Stage 1: corpus layout → ESPnet data directories ``data/<set>/{wav.scp,text,utt2spk,spk2utt}``.

LibriSpeech: ``$LIBRISPEECH/LibriSpeech/<subset>/<spk>/<chapter>/<utt>.flac`` + ``<spk>-<chapter>.trans.txt``;
set names are ESPnet's (``train_clean_100`` ↔ ``train-clean-100``; ``train_960`` = the three training
subsets, ``dev`` = dev-clean + dev-other). LRS3: ``$LRS3/<split>/<id>/<clip>.mp4`` + ``<clip>.txt`` (a ``Text:`` line); sets
``pretrain``, ``trainval``, ``test``, and ESPnet's speaker-disjoint ``dev`` (``val``: the same) and
``train``: ``dev`` holds the ``trainval`` clips of 8 % of its speakers, ``train`` = ``pretrain`` +
``trainval`` less those speakers' clips (:func:`lrs3_dev_speakers`). Ids are ESPnet's ``<speaker>_<clip>``
(``<speaker>_pretrain_<clip>`` in ``pretrain``); ``{LG}``-like markers are removed from the transcripts.
LRS3 audio is decoded from the mp4 to 16 kHz mono FLAC with PyAV (its wheels bring FFmpeg's codecs), cached per clip.

:func:`prepare_data` is the one entry of ASR and AVSR (``task="avsr"``: video and mouth ROIs too, made by
:mod:`espnet_lrsms.recipe.avsr_data_prep`); both share the set handling, the parallel pass
(:func:`check_in_parallel`), the bad-input policy and summary (:func:`finish_set`) and the writer.

Problems are collected per utterance with a kind (column 2 of ``skipped.txt``): ``duplicate_id`` (an id
twice in the transcripts),
``no_audio``, ``no_transcript``, ``unreadable``, ``empty_audio``, ``sample_rate``, ``channels`` (not mono),
``truncated`` (the whole file is decoded: it fails, or gives fewer samples than its header says).
``on_error="stop"`` raises naming them, ``"skip"`` leaves them out and logs the count per kind and where
the list is (``data/<set>/skipped.txt``). Sets given a :class:`DurationFilter` (ESPnet's stage 4: training
sets only) also leave out utterances outside it, listed in ``data/<set>/filtered.txt``. Each data
directory is written to ``<set>.tmp`` and renamed.
"""
import logging
import re
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import soundfile
from tqdm import tqdm

from espnet_lrsms.fileio import iter_kaldi_table, replaced_on_success

if TYPE_CHECKING:
    from espnet_lrsms.recipe.avsr_data_prep import RoiSettings

logger = logging.getLogger(__name__)

FS = 16000
LIBRISPEECH_COMBINED = {
    "train_960": ("train-clean-100", "train-clean-360", "train-other-500"),
    "dev": ("dev-clean", "dev-other"),
}
TASKS = ("asr", "avsr")


class DataPrepError(RuntimeError):
    """A corpus or set that cannot be prepared; the message names the path or utterance."""


@dataclass
class Utterance:
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


class _Duplicates:
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


# ------------------------------------------------------------------ LibriSpeech
def librispeech_subsets(set_name: str) -> Tuple[str, ...]:
    return LIBRISPEECH_COMBINED.get(set_name, (set_name.replace("_", "-"),))


def scan_librispeech(corpus_root: Path, set_name: str) -> List[Utterance]:
    """Pair every ``*.flac`` with its line of the chapter's ``*.trans.txt``; an id on two lines (or two
    ``.flac`` files of one id) is a ``duplicate_id`` problem naming both places."""
    base = corpus_root / "LibriSpeech"
    if not base.is_dir():
        raise DataPrepError(f"LIBRISPEECH={corpus_root}: no LibriSpeech/ directory in it")
    utts: Dict[str, Utterance] = {}
    lines, flacs = _Duplicates("utterance id in {}"), _Duplicates("utterance id of {}")
    for subset in librispeech_subsets(set_name):
        folder = base / subset
        if not folder.is_dir():
            raise DataPrepError(f"set {set_name}: {folder} does not exist")
        for trans in sorted(folder.glob("*/*/*.trans.txt")):
            for number, uttid, text in _transcript_lines(trans):
                lines.add(uttid, f"{trans}:{number}")
                utts[uttid] = Utterance(uttid, uttid.split("-")[0], text.strip() or None, None)
                if not text.strip():
                    utts[uttid].fail("no_transcript", f"empty transcript ({trans}:{number})")
        for flac in sorted(folder.glob("*/*/*.flac")):
            uttid = flac.stem
            flacs.add(uttid, str(flac))
            if uttid in utts:
                utts[uttid].source = flac
            else:
                utts[uttid] = Utterance(uttid, uttid.split("-")[0], None, flac)
    flacs.mark(utts)
    lines.mark(utts)
    return [utts[k] for k in sorted(utts)]


def _transcript_lines(trans: Path) -> List[Tuple[int, str, str]]:
    """``(line number, utterance id, text)`` of a ``*.trans.txt``; a line that is not UTF-8 (a latin-1
    byte, say) is a ``DataPrepError`` naming the file, the line and the byte."""
    try:
        return list(iter_kaldi_table(trans))
    except ValueError as error:
        raise DataPrepError(f"{error}: LibriSpeech transcripts are UTF-8; fix or re-encode the file "
                            "(e.g. iconv -f latin1 -t utf-8)") from None


# ------------------------------------------------------------------------ LRS3
LRS3_SPLITS = ("pretrain", "trainval", "test")
LRS3_SETS = LRS3_SPLITS + ("train", "dev", "val")  # val: the old name of dev, same clips
DEV_SPEAKERS_FILE = "lrs3_dev_speakers.txt"  # in the data directory: the split every set of it used
ESPNET_TRAIN_SHARE, ESPNET_SPLIT_SEED = 0.92, 0
_LRS3_MARKER = re.compile(r"\{[^{}]*\}")  # {LG} (laughter) and any other {...} tag of the transcripts


def espnet_dev_speakers(speakers: Sequence[str], train_share: float = ESPNET_TRAIN_SHARE,
                        seed: int = ESPNET_SPLIT_SEED) -> List[str]:
    """The dev speakers of ESPnet's ``egs2/lrs3/asr1`` (sorted): ``speakers`` shuffled by numpy's legacy
    generator seeded with ``seed``, the first ``int(train_share · n)`` train, the rest dev.

    ESPnet shuffles ``os.listdir(trainval)``, whose order depends on the file system; here the input is
    the sorted speaker list, so the same speakers land in dev when ESPnet's listing was sorted too.
    Otherwise give ESPnet's own list (``--valid_speakers``, e.g. its ``data/dev/spk2utt``)."""
    order = list(speakers)
    np.random.RandomState(seed).shuffle(order)
    return sorted(order[int(train_share * len(order)):])


def read_speaker_list(path: Path) -> List[str]:
    """Speaker ids: the first column of every line that is neither empty nor a ``#`` comment (a plain
    list, or an ``spk2utt``)."""
    path = Path(path)
    if not path.is_file():
        raise DataPrepError(f"dev speaker list {path}: no such file")
    ids = [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines()
           if line.strip() and not line.lstrip().startswith("#")]
    if not ids:
        raise DataPrepError(f"dev speaker list {path}: no speaker id in it")
    return sorted(set(ids))


def lrs3_dev_speakers(corpus_root: Path, data_dir: Path, valid_speakers: Optional[Path] = None) -> FrozenSet[str]:
    """The speakers of LRS3's ``dev`` set (whose ``trainval`` clips it holds; ``train`` has none of
    theirs), kept in ``data_dir/lrs3_dev_speakers.txt`` so that every set and every re-run use one split.

    From ``valid_speakers`` when given (copied there), else from that file when an earlier stage 1 left
    it, else ESPnet's rule (:func:`espnet_dev_speakers`) on the speaker folders of ``corpus_root/trainval``.
    Listed speakers missing from ``trainval`` are logged; a list with none of them is refused."""
    if not Path(corpus_root).is_dir():
        raise DataPrepError(f"corpus root {corpus_root} does not exist (set LRS3 in db.sh or the environment)")
    trainval = Path(corpus_root) / "trainval"
    if not trainval.is_dir():
        raise DataPrepError(f"the dev/train split needs {trainval}, which does not exist (LRS3={corpus_root})")
    present = sorted(p.name for p in trainval.iterdir() if p.is_dir())
    kept = Path(data_dir) / DEV_SPEAKERS_FILE
    if valid_speakers is not None:
        speakers, origin = read_speaker_list(valid_speakers), f"--valid_speakers {valid_speakers}"
    elif kept.is_file():
        speakers, origin = read_speaker_list(kept), f"{kept} (from an earlier stage 1)"
    else:
        speakers = espnet_dev_speakers(present)
        origin = (f"ESPnet's egs2/lrs3/asr1 rule: the {len(present)} trainval speakers, sorted, shuffled by "
                  f"numpy.random.RandomState({ESPNET_SPLIT_SEED}), the last {len(present) - int(ESPNET_TRAIN_SHARE * len(present))} "
                  f"(ESPnet's 8 %)")
    missing = sorted(set(speakers) - set(present))
    if len(missing) == len(speakers):
        raise DataPrepError(
            f"dev speakers from {origin}: none of the {len(speakers)} is a speaker folder of {trainval} "
            f"(e.g. {missing[0]}); another corpus's list? Give --valid_speakers or remove {kept}"
        )
    if missing:
        logger.warning("dev speakers from %s: %d of %d are not in %s (e.g. %s)", origin, len(missing),
                       len(speakers), trainval, ", ".join(missing[:3]))
    if valid_speakers is not None or not kept.is_file():
        kept.parent.mkdir(parents=True, exist_ok=True)
        with replaced_on_success(kept) as tmp:
            tmp.write_text(f"# LRS3 dev speakers (trainval speaker folders): {origin}\n"
                           + "".join(f"{s}\n" for s in speakers), encoding="utf-8")
    logger.info("LRS3 dev: %d speakers from %s; list in %s", len(speakers), origin, kept)
    return frozenset(speakers)


def lrs3_uttid(split: str, speaker: str, clip: str) -> str:
    """ESPnet's ``<speaker>_<clip>`` for ``trainval`` and ``test``; ``<speaker>_pretrain_<clip>`` for
    ``pretrain``, whose clip names repeat those of ``trainval`` (ESPnet does not use ``pretrain``)."""
    return f"{speaker}_pretrain_{clip}" if split == "pretrain" else f"{speaker}_{clip}"


def clip_name(uttid: str, speaker: str) -> str:
    """The id less its ``<speaker>_`` prefix: the name of the clip's cached files (unique per speaker)."""
    return uttid[len(speaker) + 1:]


def scan_lrs3(corpus_root: Path, set_name: str, dev_speakers: Optional[FrozenSet[str]] = None) -> List[Utterance]:
    """Pair every ``<split>/<speaker>/<clip>.mp4`` with the ``Text:`` line of its ``.txt``.

    Sets: the three splits; ``dev`` (= ``val``): the ``trainval`` clips of ``dev_speakers``; ``train``:
    ``pretrain`` + ``trainval``, both less the dev speakers' clips. ``dev_speakers`` default: ESPnet's
    rule on the corpus (:func:`espnet_dev_speakers`)."""
    if set_name not in LRS3_SETS:
        raise DataPrepError(f"LRS3 has no set {set_name!r}; known: {list(LRS3_SETS)}")
    if set_name in ("train", "dev", "val") and dev_speakers is None:
        folder = corpus_root / "trainval"
        if not folder.is_dir():
            raise DataPrepError(f"set {set_name}: {folder} does not exist (LRS3={corpus_root})")
        dev_speakers = frozenset(espnet_dev_speakers(sorted(p.name for p in folder.iterdir() if p.is_dir())))
    parts = {"train": [("pretrain", False), ("trainval", False)], "dev": [("trainval", True)],
             "val": [("trainval", True)]}.get(set_name, [(set_name, None)])
    utts: Dict[str, Utterance] = {}
    clips = _Duplicates("clip id in {}")
    left_out = 0
    for split, want_dev in parts:
        folder = corpus_root / split
        if not folder.is_dir():
            raise DataPrepError(f"set {set_name}: {folder} does not exist (LRS3={corpus_root})")
        seen = set()
        for path in sorted(folder.glob("*/*")):
            if path.suffix not in (".mp4", ".txt"):
                continue
            speaker, clip = path.parent.name, path.stem
            if want_dev is not None and (speaker in dev_speakers) != want_dev:
                left_out += path.suffix == ".mp4"
                continue
            uttid = lrs3_uttid(split, speaker, clip)
            if uttid not in seen:  # once per split: the .mp4 when there is one, else the .txt
                seen.add(uttid)
                mp4 = path.with_suffix(".mp4")
                clips.add(uttid, str(mp4 if mp4.is_file() else path))
            utt = utts.setdefault(uttid, Utterance(uttid, speaker, None, None))
            if path.suffix == ".mp4":
                utt.source = path
            else:
                utt.text = lrs3_text(path)
                if utt.text is None:
                    utt.fail("no_transcript", f"no 'Text:' line with words in {path}")
    if set_name == "train" and left_out:
        logger.info("set train: %d clips of the %d dev speakers left out (pretrain and trainval)", left_out, len(dev_speakers))
    clips.mark(utts)
    return [utts[k] for k in sorted(utts)]


def lrs3_text(path: Path) -> Optional[str]:
    """The first ``Text:`` line's words, ``{LG}``-like markers removed (ESPnet removes ``{LG}``), spaces
    collapsed; None when there are no words."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("Text:"):
            return clean_transcript(line[len("Text:"):])
    return None


def clean_transcript(words: str) -> Optional[str]:
    """``words`` less ``{LG}``-like markers, spaces collapsed; None when nothing is left."""
    return " ".join(_LRS3_MARKER.sub(" ", words).split()) or None


def decode_mp4_audio(mp4: Path, out: Path) -> None:
    """The mp4's first audio stream → 16 kHz mono FLAC at ``out`` (written to a temporary name first)."""
    import av

    with av.open(str(mp4)) as container:
        if not container.streams.audio:
            raise DataPrepError(f"{mp4}: no audio track")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=FS)
        chunks = []
        for frame in container.decode(container.streams.audio[0]):
            for resampled in resampler.resample(frame):
                chunks.append(resampled.to_ndarray().reshape(-1))
        for resampled in resampler.resample(None):
            chunks.append(resampled.to_ndarray().reshape(-1))
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    if samples.size == 0:
        raise DataPrepError(f"{mp4}: the audio track is empty")
    with replaced_on_success(out) as tmp:
        soundfile.write(tmp, samples, FS, format="FLAC")


# --------------------------------------------------------------- shared checks
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
        return utt.fail("truncated", f"truncated or damaged audio ({path}): {frames} of the {info.frames} samples its header announces")
    utt.audio, utt.num_samples = path, frames
    return utt


def _check_star(args):
    return check_audio(*args)


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


def check_in_parallel(check: Callable, jobs: Sequence, nj: int, desc: str, unit: str, chunksize: int = 16,
                      initializer: Optional[Callable] = None) -> list:
    """``check(job)`` for every job in ``nj`` processes, in order, with a progress bar."""
    with ProcessPoolExecutor(max_workers=max(1, nj), initializer=initializer) as pool:
        return list(tqdm(pool.map(check, jobs, chunksize=chunksize), total=len(jobs), desc=desc, unit=unit))


def finish_set(
    out: Path,
    checked: Sequence,
    tables: Callable[[list], Mapping[str, Mapping[str, str]]],
    on_error: str,
    noun: str,
    durations: Optional[DurationFilter] = None,
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


def prepare_set(
    corpus: str,
    corpus_root: Path,
    set_name: str,
    data_dir: Path,
    nj: int = 1,
    on_error: str = "stop",
    durations: Optional[DurationFilter] = None,
    dev_speakers: Optional[FrozenSet[str]] = None,
) -> Path:
    """Write the ASR data directory ``data_dir/<set_name>``; returns its path (``dev_speakers``: LRS3's
    split, see :func:`scan_lrs3`)."""
    check_on_error(on_error)
    corpus_root = Path(corpus_root)
    if not corpus_root.is_dir():
        raise DataPrepError(f"corpus root {corpus_root} does not exist (set {corpus.upper()} in db.sh or the environment)")
    if corpus == "lrs3":
        utts = scan_lrs3(corpus_root, set_name, dev_speakers)
    else:
        utts = scan_librispeech(corpus_root, set_name)
    if not utts:
        raise DataPrepError(f"set {set_name}: no utterances found under {corpus_root}")
    audio_dir = data_dir / "audio" / set_name  # decoded LRS3 audio, kept across re-runs
    checked = check_in_parallel(_check_star, [(u, audio_dir) for u in utts], nj, f"data prep {set_name}", "utt")
    return finish_set(data_dir / set_name, checked, audio_tables, on_error, "utterance", durations)


def audio_tables(good: Sequence[Utterance]) -> Dict[str, Dict[str, str]]:
    """wav.scp and text of the audio recipes."""
    return {"wav.scp": {u.uttid: str(u.audio.resolve()) for u in good}, "text": {u.uttid: u.text for u in good}}


def prepare_data(
    task: str,
    corpus: str,
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
    """Stage 1 of either recipe: every set of ``sets`` (once each, in order) into ``data_dir/<set>``.

    ``task="asr"``: audio and text of ``corpus``; ``"avsr"`` (LRS3 only): also mouth ROIs made with
    ``roi`` (see :func:`espnet_lrsms.recipe.avsr_data_prep.prepare_av_set`). ``durations`` applies to
    ``filter_sets`` only (ESPnet filters training sets, never test sets). LRS3's ``train`` and ``dev``
    use one list of dev speakers (:func:`lrs3_dev_speakers`: ``valid_speakers``, or ESPnet's rule),
    kept in ``data_dir/lrs3_dev_speakers.txt``. ``extra_train_sets`` (AVSR): directories of mp4 clips with
    transcripts, prepared like LRS3 and merged into the set ``extra_into``.
    """
    if task not in TASKS:
        raise DataPrepError(f"--task {task!r}: expected one of {TASKS}")
    sets = list(dict.fromkeys(sets))
    unknown = [s for s in filter_sets if s not in sets]
    if unknown:
        raise DataPrepError(f"--filter_sets {' '.join(unknown)}: not among --sets {' '.join(sets)}")
    dev_speakers = None
    if corpus == "lrs3" and (valid_speakers is not None or {"train", "dev", "val"} & set(sets)):
        dev_speakers = lrs3_dev_speakers(Path(corpus_root), Path(data_dir), valid_speakers)
    elif valid_speakers is not None:
        raise DataPrepError(f"--valid_speakers is LRS3's dev split; --corpus {corpus} has its own dev sets")
    if task == "avsr":
        if corpus != "lrs3":
            raise DataPrepError(f"--task avsr needs --corpus lrs3 (audio-visual clips), got --corpus {corpus}")
        from espnet_lrsms.recipe.avsr_data_prep import RoiSettings, prepare_av_set  # it imports this module

        roi = roi or RoiSettings()
        if extra_train_sets and extra_into not in sets:
            raise DataPrepError(f"--extra_train_sets merge into {extra_into!r}, which is not among --sets {' '.join(sets)}")
        return [
            prepare_av_set(corpus_root, s, data_dir, roi, nj, on_error, max_frame_mismatch,
                           durations if s in filter_sets else None, dev_speakers,
                           [Path(d) for d in extra_train_sets] if s == extra_into else ())
            for s in sets
        ]
    if extra_train_sets:
        raise DataPrepError("--extra_train_sets needs --task avsr (audio-visual clips)")
    return [prepare_set(corpus, corpus_root, s, data_dir, nj, on_error, durations if s in filter_sets else None,
                        dev_speakers) for s in sets]


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
