"""Stage 10: the shape files ESPnet's batch samplers read (``speech_shape``, ``text_shape.<token_type>``).

ESPnet's ``--collect_stats`` runs the model's front end over the whole training set only to learn
these lengths (and feature statistics for ``global_mvn``, which the paper's front end does not use:
it z-normalises each utterance). Reading lengths from the audio headers and the tokenizer gives the
same files without a forward pass over hundreds of hours. Only a config with ``normalize: global_mvn``
gets that forward pass too, for its statistics (:mod:`espnet_lrsms.recipe.feats_stats`).
"""
import logging
from pathlib import Path
from typing import Optional

import soundfile
from tqdm import tqdm

from espnet_lrsms.fileio import iter_kaldi_table, write_text_atomic
from espnet_lrsms.text.tokens import write_text_shapes

logger = logging.getLogger(__name__)


def _read_table(path: Path):
    for _, key, value in iter_kaldi_table(path):
        yield key, value


def write_shapes(
    data_dir: Path,
    out_dir: Path,
    bpemodel: Optional[Path],
    token_list: Path,
    token_type: str = "bpe",
    non_linguistic_symbols: Optional[Path] = None,
    cleaner: Optional[str] = None,
) -> None:
    """``out_dir/speech_shape`` (samples) and ``out_dir/text_shape.<token_type>`` ("tokens,vocab"), the
    tokens counted as ESPnet's preprocessor makes them for training (``cleaner``, then the tokenizer of
    ``token_type``: ``bpemodel``'s pieces for bpe, characters or words, ``non_linguistic_symbols`` whole)."""
    # the text first: it checks the tokenizer options before anything is written
    write_text_shapes(data_dir / "text", out_dir, bpemodel, token_list, token_type, non_linguistic_symbols, cleaner)
    wav = list(_read_table(data_dir / "wav.scp"))
    lengths = data_dir / "utt2num_samples"  # stage 3's dump has them (for exactly wav.scp's utterances); else the headers
    known = dict(_read_table(lengths)) if lengths.is_file() else {}
    if known and known.keys() == {key for key, _ in wav}:
        speech = [f"{key} {known[key]}\n" for key, _ in wav]
    else:
        speech = [
            f"{key} {soundfile.info(path).frames}\n"
            for key, path in tqdm(wav, desc=f"shapes {data_dir.name}", unit="utt")
        ]
    write_text_atomic(out_dir / "speech_shape", "".join(speech))
    logger.info("%s: %d utterances -> %s", data_dir, len(speech), out_dir)


def write_video_shape(data_dir: Path, out_dir: Path, size: int) -> Path:
    """``out_dir/video_shape`` (``<utt> <frames>,<size>,<size>``) from ``data_dir/utt2num_video_frames``."""
    source = data_dir / "utt2num_video_frames"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file (made by AVSR stage 1, espnet_lrsms.bin.prepare_data lrs3 --task avsr)")
    lines = []
    for number, key, frames in iter_kaldi_table(source):
        if not frames.isdigit():
            raise ValueError(f"{source}:{number}: expected '<utt> <frames>', got {frames!r} for {key}")
        lines.append(f"{key} {frames},{size},{size}\n")
    return write_text_atomic(out_dir / "video_shape", "".join(lines))
