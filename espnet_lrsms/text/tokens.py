"""The recipes' token types and the tokens ESPnet's preprocessor makes of a text: its cleaner, its tokenizers, and
the shape file ``text_shape.<token_type>`` (``<id> <tokens>,<vocab>`` per sentence) that ESPnet's batch samplers
read, for the ASR transcripts (:mod:`espnet_lrsms.recipe.shapes`) and the LM texts alike."""
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from espnet_lrsms.fileio import replaced_on_success
from espnet_lrsms.text.kaldi_text import read_kaldi_text


TOKEN_TYPES = ("bpe", "char", "word")  # the token types of the recipes (ESPnet's, less phn: no g2p here)


def _none(value):
    return None if value is None or str(value) in ("", "none", "None") else value


def text_cleaner(cleaner: Optional[str]) -> Callable[[str], str]:
    """ESPnet's ``TextCleaner`` of ``cleaner`` (e.g. ``tacotron``; None or ``"none"``: the text as it is), checked
    on a sample: an unknown name raises ``ValueError`` naming it (ESPnet's raises on the first sentence)."""
    if _none(cleaner) is None:
        return lambda text: text
    from espnet2.text.cleaner import TextCleaner  # imported only when used: tacotron's takes seconds to import

    clean = TextCleaner(cleaner)
    try:
        clean("a")
    except RuntimeError as e:
        raise ValueError(f"cleaner {cleaner!r}: {e} (ESPnet's: tacotron, jaconv, vietnamese, korean_cleaner, "
                         "whisper_en, whisper_basic)") from None
    return clean


def token_counter(
    token_type: str,
    bpemodel: Optional[Path] = None,
    non_linguistic_symbols: Optional[Path] = None,
    cleaner: Optional[str] = None,
) -> Callable[[Sequence[str]], List[int]]:
    """How many tokens ESPnet's preprocessor makes of each sentence: ``cleaner`` first, then the tokenizer
    of ``token_type`` (as ESPnet's ``build_tokenizer``: SentencePiece pieces of ``bpemodel``; characters
    with ``<space>``; words), with ``non_linguistic_symbols`` (a file, one a line) kept as one token each.
    ``"none"`` counts as not given, as in ESPnet's options."""
    if token_type not in TOKEN_TYPES:
        raise ValueError(f"token_type {token_type!r}: expected one of {', '.join(TOKEN_TYPES)}")
    bpemodel, non_linguistic_symbols, cleaner = map(_none, (bpemodel, non_linguistic_symbols, cleaner))
    if token_type == "bpe" and (bpemodel is None or not Path(bpemodel).is_file()):
        raise FileNotFoundError(f"bpemodel {bpemodel}: no such file (token_type bpe needs stage 5's bpe.model)")
    if non_linguistic_symbols is not None and not Path(non_linguistic_symbols).is_file():
        raise FileNotFoundError(f"non_linguistic_symbols {non_linguistic_symbols}: no such file")
    clean = text_cleaner(cleaner)
    if token_type == "bpe":  # SentencePiece encodes a batch at once (40 M sentences of an LM corpus)
        import sentencepiece

        sp = sentencepiece.SentencePieceProcessor(model_file=str(bpemodel))
        return lambda sentences: [len(p) for p in sp.encode([clean(s) for s in sentences], out_type=int)]
    # ESPnet's tokenizer classes themselves (build_tokenizer imports every tokenizer, g2p's too: half a
    # minute). Words are split at blanks, a symbol among them stays whole: ESPnet's word tokenizer reads the
    # symbols only to remove them, which training does not.
    if token_type == "char":
        from espnet2.text.char_tokenizer import CharTokenizer

        tokenizer = CharTokenizer(non_linguistic_symbols=non_linguistic_symbols and str(non_linguistic_symbols))
    else:
        from espnet2.text.word_tokenizer import WordTokenizer

        tokenizer = WordTokenizer()
    return lambda sentences: [len(tokenizer.text2tokens(clean(s))) for s in sentences]


def write_text_shapes(
    text: Path,
    out_dir: Path,
    bpemodel: Optional[Path],
    token_list: Path,
    token_type: str = "bpe",
    non_linguistic_symbols: Optional[Path] = None,
    cleaner: Optional[str] = None,
) -> Path:
    """``out_dir/text_shape.<token_type>``: ``<id> <number of tokens>,<vocabulary size>`` per sentence,
    the tokens counted as training will make them (:func:`token_counter`)."""
    count = token_counter(token_type, bpemodel, non_linguistic_symbols, cleaner)
    with open(token_list, encoding="utf-8") as f:
        vocab = sum(1 for _ in f)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"text_shape.{token_type}"
    with replaced_on_success(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        batch = []
        for key, words in read_kaldi_text(text):
            batch.append((key, words))
            if len(batch) == 10000:
                _write_shape_batch(f, count, batch, vocab)
                batch = []
        _write_shape_batch(f, count, batch, vocab)
    return out


def _write_shape_batch(f, count, batch, vocab) -> None:
    if not batch:
        return
    lengths = count([words for _, words in batch])
    f.writelines(f"{key} {n},{vocab}\n" for (key, _), n in zip(batch, lengths))
