"""Stage 1: corpus layout → ESPnet data directories ``data/<set>/{wav.scp,text,utt2spk,spk2utt}``.

LibriSpeech: ``$LIBRISPEECH/LibriSpeech/<subset>/<spk>/<chapter>/<utt>.flac`` + ``<spk>-<chapter>.trans.txt``;
set names are ESPnet's (``train_clean_100`` ↔ ``train-clean-100``; ``train_960`` = the three training
subsets, ``dev`` = dev-clean + dev-other). LRS3: ``$LRS3/<split>/<id>/<clip>.mp4`` + ``<clip>.txt`` (a ``Text:`` line); sets
``pretrain``, ``trainval``, ``test``, and ``train``/``val`` (``val`` = 5 % of ``trainval`` clips chosen by
a hash of their id, ``train`` = ``pretrain`` + the rest of ``trainval``). LRS3 audio is decoded from the
mp4 to 16 kHz mono FLAC with PyAV (its wheels bring FFmpeg's codecs), cached per clip.

Problems (missing audio or transcript, unreadable or empty audio, mp4 without audio) are collected per
utterance: ``on_error="stop"`` raises naming them, ``"skip"`` leaves them out, logs how many and where
the list is (``data/<set>/skipped.txt``). Each data directory is written to ``<set>.tmp`` and renamed.
"""
import logging
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import soundfile
from tqdm import tqdm

from espnet_lrsms.fileio import replaced_on_success, split_kaldi_line

logger = logging.getLogger(__name__)

FS = 16000
LIBRISPEECH_COMBINED = {
    "train_960": ("train-clean-100", "train-clean-360", "train-other-500"),
    "dev": ("dev-clean", "dev-other"),
}


class DataPrepError(RuntimeError):
    """A corpus or set that cannot be prepared; the message names the path or utterance."""


@dataclass
class Utterance:
    uttid: str
    speaker: str
    text: Optional[str]  # None: no transcript found
    source: Optional[Path]  # None: no audio found
    audio: Optional[Path] = None  # the file wav.scp points at (set by the checks)
    problem: Optional[str] = None


# ------------------------------------------------------------------ LibriSpeech
def librispeech_subsets(set_name: str) -> Tuple[str, ...]:
    return LIBRISPEECH_COMBINED.get(set_name, (set_name.replace("_", "-"),))


def scan_librispeech(corpus_root: Path, set_name: str) -> List[Utterance]:
    """Pair every ``*.flac`` with its line of the chapter's ``*.trans.txt``."""
    base = corpus_root / "LibriSpeech"
    if not base.is_dir():
        raise DataPrepError(f"LIBRISPEECH={corpus_root}: no LibriSpeech/ directory in it")
    utts: Dict[str, Utterance] = {}
    for subset in librispeech_subsets(set_name):
        folder = base / subset
        if not folder.is_dir():
            raise DataPrepError(f"set {set_name}: {folder} does not exist")
        for trans in sorted(folder.glob("*/*/*.trans.txt")):
            for number, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                uttid, text = split_kaldi_line(line)
                speaker = uttid.split("-")[0]
                utts[uttid] = Utterance(uttid, speaker, text.strip() or None, None)
                if not text.strip():
                    utts[uttid].problem = f"empty transcript ({trans}:{number})"
        for flac in sorted(folder.glob("*/*/*.flac")):
            uttid = flac.stem
            if uttid in utts:
                utts[uttid].source = flac
            else:
                utts[uttid] = Utterance(uttid, uttid.split("-")[0], None, flac)
    return [utts[k] for k in sorted(utts)]


# ------------------------------------------------------------------------ LRS3
LRS3_SPLITS = ("pretrain", "trainval", "test")


def _in_lrs3_val(uttid: str) -> bool:
    return zlib.crc32(uttid.encode()) % 20 == 0


def scan_lrs3(corpus_root: Path, set_name: str) -> List[Utterance]:
    """Pair every ``<id>/<clip>.mp4`` with the ``Text:`` line of ``<id>/<clip>.txt``."""
    if set_name in LRS3_SPLITS:
        parts = [(set_name, None)]
    elif set_name == "train":
        parts = [("pretrain", None), ("trainval", False)]
    elif set_name == "val":
        parts = [("trainval", True)]
    else:
        raise DataPrepError(f"LRS3 has no set {set_name!r}; known: {list(LRS3_SPLITS) + ['train', 'val']}")
    utts: Dict[str, Utterance] = {}
    for split, want_val in parts:
        folder = corpus_root / split
        if not folder.is_dir():
            raise DataPrepError(f"set {set_name}: {folder} does not exist (LRS3={corpus_root})")
        for path in sorted(folder.glob("*/*")):
            if path.suffix not in (".mp4", ".txt"):
                continue
            speaker, clip = path.parent.name, path.stem
            uttid = f"{speaker}_{clip}"
            if want_val is not None and _in_lrs3_val(uttid) != want_val:
                continue
            utt = utts.setdefault(uttid, Utterance(uttid, speaker, None, None))
            if path.suffix == ".mp4":
                utt.source = path
            else:
                utt.text = _lrs3_text(path)
                if utt.text is None:
                    utt.problem = f"no 'Text:' line in {path}"
    return [utts[k] for k in sorted(utts)]


def _lrs3_text(path: Path) -> Optional[str]:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("Text:"):
            return line[len("Text:"):].strip() or None
    return None


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
def check_audio(utt: Utterance, audio_dir: Optional[Path]) -> Utterance:
    """Fill ``utt.audio`` (decoding mp4 into ``audio_dir`` when needed) or ``utt.problem``."""
    if utt.problem:
        return utt
    if utt.source is None:
        utt.problem = "transcript without audio"
        return utt
    if utt.text is None:
        utt.problem = f"audio without transcript ({utt.source})"
        return utt
    try:
        if utt.source.suffix == ".mp4":
            target = audio_dir / utt.speaker / f"{utt.source.stem}.flac"
            if not target.is_file():  # cached: a re-run continues where it stopped
                decode_mp4_audio(utt.source, target)
            path = target
        else:
            path = utt.source
        info = soundfile.info(str(path))
        if info.frames == 0:
            utt.problem = f"zero-length audio ({path})"
        elif info.samplerate != FS:
            utt.problem = f"{info.samplerate} Hz audio, expected {FS} ({path})"
        else:
            utt.audio = path
    except DataPrepError as err:
        utt.problem = str(err)
    except ImportError:  # a missing package is the installation's fault, not this utterance's
        raise
    except Exception as err:  # soundfile/PyAV errors: unreadable file
        utt.problem = f"unreadable audio ({utt.source}): {type(err).__name__}: {err}"
    return utt


def _check_star(args):
    return check_audio(*args)


def prepare_set(
    corpus: str,
    corpus_root: Path,
    set_name: str,
    data_dir: Path,
    nj: int = 1,
    on_error: str = "stop",
) -> Path:
    """Write ``data_dir/<set_name>``; returns its path."""
    if on_error not in ("stop", "skip"):
        raise ValueError(f"on_error must be 'stop' or 'skip', got {on_error!r}")
    corpus_root = Path(corpus_root)
    if not corpus_root.is_dir():
        raise DataPrepError(f"corpus root {corpus_root} does not exist (set {corpus.upper()} in db.sh or the environment)")
    scan = {"librispeech": scan_librispeech, "lrs3": scan_lrs3}[corpus]
    utts = scan(corpus_root, set_name)
    if not utts:
        raise DataPrepError(f"set {set_name}: no utterances found under {corpus_root}")
    out = data_dir / set_name
    audio_dir = data_dir / "audio" / set_name  # decoded LRS3 audio, kept across re-runs
    jobs = [(u, audio_dir) for u in utts]
    with ProcessPoolExecutor(max_workers=max(1, nj)) as pool:
        checked = list(
            tqdm(pool.map(_check_star, jobs, chunksize=16), total=len(jobs), desc=f"data prep {set_name}", unit="utt")
        )
    good = [u for u in checked if u.problem is None]
    bad = [u for u in checked if u.problem is not None]
    write_data_dir(out, good, bad)
    if bad:
        listing = out / "skipped.txt"
        examples = "; ".join(f"{u.uttid}: {u.problem}" for u in bad[:3])
        if on_error == "stop":
            shutil.move(str(out), str(out.with_name(out.name + ".failed")))
            raise DataPrepError(
                f"set {set_name}: {len(bad)} of {len(checked)} utterances have problems, e.g. {examples}; "
                f"full list in {out.with_name(out.name + '.failed') / 'skipped.txt'} "
                "(re-run with --on_error skip to leave them out)"
            )
        logger.warning("set %s: skipped %d of %d utterances (%s); list in %s", set_name, len(bad), len(checked), examples, listing)
    if not good:
        raise DataPrepError(f"set {set_name}: no usable utterance (see {out / 'skipped.txt'})")
    logger.info("set %s: %d utterances -> %s", set_name, len(good), out)
    return out


def write_kaldi_data_dir(
    out: Path, tables: Mapping[str, Mapping[str, str]], utt2spk: Mapping[str, str], skipped: Sequence[str] = ()
) -> None:
    """An ESPnet (Kaldi-style) data directory, the one writer of every recipe's data prep.

    ``tables``: file name → {utterance id → value}, each written as ``<id> <value>`` lines sorted by
    id (as ESPnet requires); ``utt2spk`` and ``spk2utt`` come from ``utt2spk``; ``skipped``: lines
    of ``skipped.txt`` (written only when there are some). The directory is written under a
    temporary name and renamed; the ``<out>.failed`` left by an earlier stopped run is removed.
    """
    spk2utt: Dict[str, List[str]] = {}
    for uttid in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[uttid], []).append(uttid)
    files = {name: [f"{k} {v}\n" for k, v in sorted(table.items())] for name, table in tables.items()}
    files["utt2spk"] = [f"{k} {v}\n" for k, v in sorted(utt2spk.items())]
    files["spk2utt"] = [f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())]
    if skipped:
        files["skipped.txt"] = list(skipped)
    with replaced_on_success(out) as tmp:
        tmp.mkdir()
        for name, lines in files.items():
            (tmp / name).write_text("".join(lines), encoding="utf-8")
    failed = out.with_name(out.name + ".failed")
    if failed.exists():
        shutil.rmtree(failed)


def write_data_dir(out: Path, good: Iterable[Utterance], bad: Iterable[Utterance]) -> None:
    """wav.scp, text, utt2spk, spk2utt (+ skipped.txt) of the audio recipes."""
    good = list(good)
    write_kaldi_data_dir(
        out,
        {"wav.scp": {u.uttid: str(u.audio.resolve()) for u in good}, "text": {u.uttid: u.text for u in good}},
        {u.uttid: u.speaker for u in good},
        [f"{u.uttid}\t{u.problem}\n" for u in bad],
    )
