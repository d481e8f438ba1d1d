"""LibriSpeech for stage 1: the utterances of a set, as :class:`espnet_lrsms.recipe.data_prep.Utterance` records.

Layout: ``$LIBRISPEECH/LibriSpeech/<subset>/<spk>/<chapter>/<utt>.flac`` + ``<spk>-<chapter>.trans.txt``;
set names are ESPnet's (``train_clean_100`` ↔ ``train-clean-100``; ``train_960`` = the three training
subsets, ``dev`` = dev-clean + dev-other).
"""
from pathlib import Path
from typing import Dict, List, Tuple

from espnet_lrsms.fileio import iter_kaldi_table
from espnet_lrsms.recipe.data_prep import DataPrepError, DuplicateIds, Utterance

LIBRISPEECH_COMBINED = {
    "train_960": ("train-clean-100", "train-clean-360", "train-other-500"),
    "dev": ("dev-clean", "dev-other"),
}


def librispeech_subsets(set_name: str) -> Tuple[str, ...]:
    return LIBRISPEECH_COMBINED.get(set_name, (set_name.replace("_", "-"),))


def scan_librispeech(corpus_root: Path, set_name: str) -> List[Utterance]:
    """Pair every ``*.flac`` with its line of the chapter's ``*.trans.txt``; an id on two lines (or two
    ``.flac`` files of one id) is a ``duplicate_id`` problem naming both places."""
    base = corpus_root / "LibriSpeech"
    if not base.is_dir():
        raise DataPrepError(f"LIBRISPEECH={corpus_root}: no LibriSpeech/ directory in it")
    utts: Dict[str, Utterance] = {}
    lines, flacs = DuplicateIds("utterance id in {}"), DuplicateIds("utterance id of {}")
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
