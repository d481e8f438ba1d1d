"""Stage 10: the shape files ESPnet's batch samplers read (``speech_shape``, ``text_shape.<token_type>``).

ESPnet's ``--collect_stats`` runs the model's front end over the whole training set only to learn
these lengths (and feature statistics for ``global_mvn``, which the paper's front end does not use:
it z-normalises each utterance). Reading lengths from the audio headers and the tokenizer gives the
same files without a forward pass over hundreds of hours.
"""
import logging
from pathlib import Path

import soundfile
from tqdm import tqdm

from espnet_lrsms.fileio import iter_kaldi_table, write_text_atomic

logger = logging.getLogger(__name__)


def _read_table(path: Path):
    for _, key, value in iter_kaldi_table(path):
        yield key, value


def write_shapes(data_dir: Path, out_dir: Path, bpemodel: Path, token_list: Path, token_type: str = "bpe") -> None:
    """``out_dir/speech_shape`` (samples) and ``out_dir/text_shape.<token_type>`` ("tokens,vocab")."""
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(bpemodel))
    vocab = sum(1 for _ in open(token_list, encoding="utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    speech = [
        f"{key} {soundfile.info(path).frames}\n"
        for key, path in tqdm(list(_read_table(data_dir / "wav.scp")), desc=f"shapes {data_dir.name}", unit="utt")
    ]
    text = [f"{key} {len(sp.encode(value.strip(), out_type=str))},{vocab}\n" for key, value in _read_table(data_dir / "text")]
    for name, lines in (("speech_shape", speech), (f"text_shape.{token_type}", text)):
        write_text_atomic(out_dir / name, "".join(lines))
    logger.info("%s: %d utterances -> %s", data_dir, len(speech), out_dir)


def write_video_shape(data_dir: Path, out_dir: Path, size: int) -> Path:
    """``out_dir/video_shape`` (``<utt> <frames>,<size>,<size>``) from ``data_dir/utt2num_video_frames``."""
    source = data_dir / "utt2num_video_frames"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file (made by AVSR stage 1, espnet_lrsms.bin.prepare_data --task avsr)")
    lines = []
    for number, key, frames in iter_kaldi_table(source):
        if not frames.isdigit():
            raise ValueError(f"{source}:{number}: expected '<utt> <frames>', got {frames!r} for {key}")
        lines.append(f"{key} {frames},{size},{size}\n")
    return write_text_atomic(out_dir / "video_shape", "".join(lines))
