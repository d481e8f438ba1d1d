"""Kaldi ``text`` files (``<id> <words>`` per line, optionally gzipped) read one way for the tokenizer's shape
files and the LM's training text."""
import gzip
import logging
from pathlib import Path
from typing import Iterator, Tuple

from espnet_lrsms.fileio import split_kaldi_line

logger = logging.getLogger(__name__)


def open_text(path: Path):
    """``path`` opened for reading as UTF-8 text, through gzip if its name ends in ``.gz``."""
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_kaldi_text(path: Path) -> Iterator[Tuple[str, str]]:
    """``(id, words)`` per line of a Kaldi ``text``, the words joined by single blanks; a line without words is
    left out (logged at debug level)."""
    with open_text(path) as f:
        for number, line in enumerate(f, 1):
            key, words = split_kaldi_line(line)
            if not key:
                continue
            if not words.strip():
                logger.debug("%s:%d: %s has no words; left out", path, number, key)
                continue
            yield key, " ".join(words.split())
