"""LRS3 for stage 1: the clips of a set, as :class:`espnet_lrsms.recipe.data_prep.Utterance` records, and its dev split.

Layout: ``$LRS3/<split>/<id>/<clip>.mp4`` + ``<clip>.txt`` (a ``Text:`` line); sets ``pretrain``,
``trainval``, ``test``, and ESPnet's speaker-disjoint ``dev`` (``val``: the same) and ``train``: ``dev``
holds the ``trainval`` clips of 8 % of its speakers, ``train`` = ``pretrain`` + ``trainval`` less those
speakers' clips (:func:`lrs3_dev_speakers`). Ids are ESPnet's ``<speaker>_<clip>``
(``<speaker>_pretrain_<clip>`` in ``pretrain``); ``{LG}``-like markers are removed from the transcripts.
LRS3 audio is decoded from the mp4 to 16 kHz mono FLAC with PyAV (its wheels bring FFmpeg's codecs)
(:func:`decode_mp4_audio`; ASR's stage 1 caches it per clip). AVSR's stage 1
(:mod:`espnet_lrsms.recipe.avsr_data_prep`) uses the same sets and ids.
"""
import logging
import re
from pathlib import Path
from typing import Dict, FrozenSet, List, Optional, Sequence

import numpy as np
import soundfile

from espnet_lrsms.fileio import replaced_on_success
from espnet_lrsms.recipe.data_prep import FS, DataPrepError, DuplicateIds, Utterance

logger = logging.getLogger(__name__)

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
        dev_count = len(present) - int(ESPNET_TRAIN_SHARE * len(present))
        origin = (f"ESPnet's egs2/lrs3/asr1 rule: the {len(present)} trainval speakers, sorted, shuffled by "
                  f"numpy.random.RandomState({ESPNET_SPLIT_SEED}), the last {dev_count} (ESPnet's 8 %)")
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
    clips = DuplicateIds("clip id in {}")
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
        logger.info("set train: %d clips of the %d dev speakers left out (pretrain and trainval)",
                    left_out, len(dev_speakers))
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
