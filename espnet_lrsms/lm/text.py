"""LM training text in ESPnet's layout (``<id> <words>`` per line) and its shape file.

Two kinds of input: Kaldi ``text`` files (transcripts, ids kept) and plain text, one sentence a line,
optionally gzipped (the LibriSpeech LM corpus, ``librispeech-lm-norm.txt.gz``), whose lines get ids
``<file stem>-<line number>``. The shape file ``text_shape.<token_type>`` holds ``<id> <tokens>,<vocab>``
for ESPnet's batch samplers, as :mod:`espnet_lrsms.recipe.shapes` writes for the ASR text.
"""
import gzip
import logging
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple

from espnet_lrsms.fileio import replaced_on_success, split_kaldi_line

logger = logging.getLogger(__name__)


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_kaldi_text(path: Path) -> Iterator[Tuple[str, str]]:
    with _open_text(path) as f:
        for number, line in enumerate(f, 1):
            key, words = split_kaldi_line(line)
            if not key:
                continue
            if not words.strip():
                logger.debug("%s:%d: %s has no words; left out", path, number, key)
                continue
            yield key, " ".join(words.split())


def read_plain_text(path: Path) -> Iterator[Tuple[str, str]]:
    stem = path.name.split(".")[0]
    with _open_text(path) as f:
        for number, line in enumerate(f, 1):
            words = " ".join(line.split())
            if words:
                yield f"{stem}-{number:09d}", words


def write_lm_text(out_dir: Path, kaldi_texts: Sequence[Path] = (), plain_texts: Sequence[Path] = ()) -> Path:
    """Concatenate the inputs into ``out_dir/text``; ids must be unique across them. Returns the path."""
    if not kaldi_texts and not plain_texts:
        raise ValueError("no LM text given: pass at least one Kaldi text or plain text file")
    for path in list(kaldi_texts) + list(plain_texts):
        if not Path(path).is_file():
            raise FileNotFoundError(f"LM text {path}: no such file")
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "text"
    seen = set()
    count = 0
    with replaced_on_success(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        sources = [(Path(p), read_kaldi_text) for p in kaldi_texts] + [(Path(p), read_plain_text) for p in plain_texts]
        for path, reader in sources:
            for key, words in reader(path):
                if key in seen:
                    raise ValueError(f"{path}: utterance id {key} appears twice in the LM text")
                seen.add(key)
                f.write(f"{key} {words}\n")
                count += 1
        if count == 0:
            raise ValueError(f"LM text from {[str(p) for p in list(kaldi_texts) + list(plain_texts)]} is empty")
    logger.info("%d sentences -> %s", count, out)
    return out


def write_text_shapes(
    text: Path, out_dir: Path, bpemodel: Optional[Path], token_list: Path, token_type: str = "bpe"
) -> Path:
    """``out_dir/text_shape.<token_type>``: ``<id> <number of tokens>,<vocabulary size>`` per sentence
    (``bpe``: SentencePiece pieces of ``bpemodel``; ``word``: words)."""
    if token_type == "bpe":
        import sentencepiece

        sp = sentencepiece.SentencePieceProcessor(model_file=str(bpemodel))
    elif token_type == "word":
        sp = _WordSplitter()
    else:
        raise ValueError(f"token_type {token_type!r}: this writes shapes for 'bpe' or 'word'")
    with open(token_list, encoding="utf-8") as f:
        vocab = sum(1 for _ in f)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"text_shape.{token_type}"
    with replaced_on_success(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        batch = []
        for key, words in read_kaldi_text(text):
            batch.append((key, words))
            if len(batch) == 10000:
                _write_shape_batch(f, sp, batch, vocab)
                batch = []
        _write_shape_batch(f, sp, batch, vocab)
    return out


class _WordSplitter:
    @staticmethod
    def encode(sentences, out_type=int):
        return [s.split() for s in sentences]


def _write_shape_batch(f, sp, batch, vocab) -> None:
    if not batch:
        return
    pieces = sp.encode([words for _, words in batch], out_type=int)
    f.writelines(f"{key} {len(p)},{vocab}\n" for (key, _), p in zip(batch, pieces))
