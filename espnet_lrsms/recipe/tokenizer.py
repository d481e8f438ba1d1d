"""Stage 5: ESPnet's token list of the training transcripts, for ``--token_type`` bpe, char or word.

bpe: a SentencePiece model (``bpe.model``) and every piece of its ``bpe.vocab`` after the first three lines
(``<unk>``, ``<s>``, ``</s>``), in the model's order, as ESPnet's asr.sh writes it — pieces that the training
text never uses included, so the list matches ESPnet's for the same model. char and word: the characters
(``<space>`` between words) or the words of the text, after ESPnet's ``--cleaner``,
``--non_linguistic_symbols`` kept whole, written by ESPnet's own ``espnet2.bin.tokenize_text`` (its
``tokenize``, in this process), the tokens by frequency. Every list has the blank symbol first, the OOV
symbol second and sos/eos last.
"""
import contextlib
import logging
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence, Union

from espnet_lrsms.fileio import replaced_on_success, split_kaldi_line, write_text_atomic
from espnet_lrsms.text.tokens import TOKEN_TYPES, text_cleaner

logger = logging.getLogger(__name__)

BLANK, OOV, SOS_EOS = "<blank>", "<unk>", "<sos/eos>"  # ESPnet's asr.sh defaults (--blank, --oov, --sos_eos)


def user_defined_symbols(bpe_nlsyms: Optional[str]) -> List[str]:
    """ESPnet's ``--bpe_nlsyms``: a file (its first field, a symbol a line) or a comma-separated list."""
    if not bpe_nlsyms or bpe_nlsyms == "none":
        return []
    if Path(bpe_nlsyms).is_file():
        return [line.split()[0] for line in Path(bpe_nlsyms).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [s for s in bpe_nlsyms.split(",") if s]


def _write_vocabulary(
    text: Path,
    tokens: Path,
    token_type: str,
    specials: Sequence[str],
    *,
    non_linguistic_symbols: Optional[Path] = None,
    cleaner: Optional[str] = None,
    source: str = "",
) -> Path:
    """``tokens`` from the Kaldi ``text`` (``source`` names it in errors) by ESPnet's tokenize_text in its
    ``--write_vocabulary true`` mode, with ESPnet's asr.sh options (``--field 2-``, ``--add_symbol``)."""
    from espnet2.bin.tokenize_text import tokenize  # imports every ESPnet tokenizer: seconds, once a process

    blank, oov, sos_eos = specials
    # written to stdout, redirected to the file: ESPnet's tokenize leaves an output file it opens unclosed
    with replaced_on_success(tokens) as tmp, open(tmp, "w", encoding="utf-8") as out, contextlib.redirect_stdout(out):
        tokenize(
            input=str(text), output="-", field="2-", delimiter=None, token_type=token_type, space_symbol="<space>",
            non_linguistic_symbols=None if non_linguistic_symbols is None else str(non_linguistic_symbols),
            bpemodel=None, log_level="INFO", write_vocabulary=True,
            vocabulary_size=0, remove_non_linguistic_symbols=False, cutoff=0,
            add_symbol=[f"{blank}:0", f"{oov}:1", f"{sos_eos}:-1"], cleaner=cleaner, g2p=None, add_nonsplit_symbol=[],
        )
    count = sum(1 for _ in open(tokens, encoding="utf-8"))
    if count <= len(specials):
        raise ValueError(f"{source or text}: no {token_type} tokens in the training text")
    logger.info("%s: %d tokens", tokens, count)
    return tokens


def train_tokenizer(
    text: Path,
    out_dir: Path,
    nbpe: int,
    mode: str = "unigram",
    *,
    blank: str = BLANK,
    oov: str = OOV,
    sos_eos: str = SOS_EOS,
    bpe_nlsyms: Optional[str] = None,
) -> Path:
    """Write ``out_dir/bpe.model`` and ``out_dir/tokens.txt``; returns ``tokens.txt``.

    As ESPnet's stage 5 for bpe: SentencePiece (``mode``: unigram or bpe, ``nbpe`` pieces) on the text as it
    is (ESPnet cleans it in training, not here), ``bpe_nlsyms`` as user-defined symbols (whole pieces).
    """
    import sentencepiece

    if not Path(text).is_file():
        raise FileNotFoundError(f"{text}: no such file (the training text)")
    symbols = user_defined_symbols(bpe_nlsyms)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(text, encoding="utf-8") as f, tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as plain:
        for line in f:
            plain.write(split_kaldi_line(line)[1] + "\n")
    prefix = out_dir / "bpe.tmp"
    try:
        sentencepiece.SentencePieceTrainer.train(
            input=plain.name,
            model_prefix=str(prefix),
            vocab_size=nbpe,
            model_type=mode,
            character_coverage=1.0,
            input_sentence_size=100_000_000,
            hard_vocab_limit=False,  # a small corpus may not fill nbpe pieces
            minloglevel=2,
            **({"user_defined_symbols": symbols} if symbols else {}),
        )
    finally:
        Path(plain.name).unlink()
    Path(f"{prefix}.model").replace(out_dir / "bpe.model")
    Path(f"{prefix}.vocab").replace(out_dir / "bpe.vocab")
    return write_bpe_token_list(out_dir / "bpe.vocab", out_dir / "tokens.txt", (blank, oov, sos_eos))


def write_bpe_token_list(vocab: Path, tokens: Path, specials: Sequence[str] = (BLANK, OOV, SOS_EOS)) -> Path:
    """ESPnet's bpe token list: ``blank``, ``oov``, the first field of every line of SentencePiece's
    ``vocab`` after its first three (``<unk>``, ``<s>``, ``</s>``), ``sos_eos``; returns ``tokens``."""
    blank, oov, sos_eos = specials
    with open(vocab, encoding="utf-8") as f:
        pieces = [line.split("\t")[0] for number, line in enumerate(f) if number >= 3 and line.strip()]
    if not pieces:
        raise ValueError(f"{vocab}: no pieces after <unk>, <s>, </s> (SentencePiece learned nothing from the text)")
    write_text_atomic(tokens, "".join(f"{token}\n" for token in (blank, oov, *pieces, sos_eos)))
    logger.info("%s: %d tokens (%d pieces of %s)", tokens, len(pieces) + 3, len(pieces), vocab)
    return tokens


def write_token_list(
    texts: Sequence[Union[str, Path]],
    out_dir: Path,
    token_type: str,
    *,
    non_linguistic_symbols: Optional[Union[str, Path]] = None,
    cleaner: Optional[str] = None,
    blank: str = BLANK,
    oov: str = OOV,
    sos_eos: str = SOS_EOS,
) -> Path:
    """``out_dir/tokens.txt`` for ``token_type`` char or word from the Kaldi ``texts``; returns its path.

    As ESPnet's stage 5 for char and word: the texts (utterances without words left out) through
    ``cleaner`` (e.g. tacotron), then ESPnet's char or word tokenizer, the ``non_linguistic_symbols`` (a
    file, one a line) each one token.
    """
    if token_type not in TOKEN_TYPES or token_type == "bpe":
        raise ValueError(f"token_type {token_type!r}: this writes char or word lists (bpe: train_tokenizer)")
    if not texts:
        raise ValueError("no training text given")
    for path in texts:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file (the training text)")
    none = (None, "", "none")
    non_linguistic_symbols = None if non_linguistic_symbols in none else non_linguistic_symbols
    cleaner = None if cleaner in none else cleaner
    if non_linguistic_symbols is not None and not Path(non_linguistic_symbols).is_file():
        raise FileNotFoundError(f"non_linguistic_symbols {non_linguistic_symbols}: no such file")
    text_cleaner(cleaner)  # an unknown cleaner is named before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=out_dir, delete=False, encoding="utf-8") as joined:
        for path in texts:  # ESPnet's lm_train.txt: the texts, lines without words left out
            with open(path, encoding="utf-8") as f:
                joined.writelines(line.rstrip("\n") + "\n" for line in f if split_kaldi_line(line)[1].strip())
    try:
        return _write_vocabulary(
            Path(joined.name), out_dir / "tokens.txt", token_type, (blank, oov, sos_eos),
            non_linguistic_symbols=non_linguistic_symbols, cleaner=cleaner, source=" + ".join(map(str, texts)),
        )
    finally:
        Path(joined.name).unlink()
