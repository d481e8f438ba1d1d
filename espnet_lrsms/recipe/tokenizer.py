"""Stage 5: a SentencePiece model on the training transcripts and ESPnet's token list."""
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

from espnet_lrsms.fileio import replaced_on_success, split_kaldi_line

logger = logging.getLogger(__name__)


def train_tokenizer(text: Path, out_dir: Path, nbpe: int, mode: str = "unigram") -> Path:
    """Write ``out_dir/bpe.model`` and ``out_dir/tokens.txt``; returns ``tokens.txt``.

    The token list is made by ESPnet's own ``espnet2.bin.tokenize_text`` as in ESPnet's asr.sh:
    ``<blank>`` first, ``<unk>`` second, the pieces by frequency, ``<sos/eos>`` last.
    """
    import sentencepiece

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(text, encoding="utf-8") as f, tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as plain:
        for line in f:
            plain.write(split_kaldi_line(line)[1] + "\n")
    prefix = out_dir / "bpe.tmp"
    sentencepiece.SentencePieceTrainer.train(
        input=plain.name,
        model_prefix=str(prefix),
        vocab_size=nbpe,
        model_type=mode,
        character_coverage=1.0,
        input_sentence_size=100_000_000,
        hard_vocab_limit=False,  # a small corpus may not fill nbpe pieces
        minloglevel=2,
    )
    Path(plain.name).unlink()
    Path(f"{prefix}.model").replace(out_dir / "bpe.model")
    Path(f"{prefix}.vocab").replace(out_dir / "bpe.vocab")
    tokens = out_dir / "tokens.txt"
    with replaced_on_success(tokens) as tmp:
        subprocess.run(
            [
                sys.executable, "-m", "espnet2.bin.tokenize_text",
                "--token_type", "bpe",
                "--input", str(text),
                "--output", str(tmp),
                "--field", "2-",
                "--bpemodel", str(out_dir / "bpe.model"),
                "--write_vocabulary", "true",
                "--add_symbol", "<blank>:0",
                "--add_symbol", "<unk>:1",
                "--add_symbol", "<sos/eos>:-1",
            ],
            check=True,
        )
    logger.info("%s: %d tokens", tokens, sum(1 for _ in open(tokens, encoding="utf-8")))
    return tokens
