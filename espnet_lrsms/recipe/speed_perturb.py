"""Stage 2: speed perturbation of a training set, as ESPnet's ``perturb_data_dir_speed.sh`` does it, without sox.

For each factor ``f`` other than 1, every utterance is resampled so that it plays ``f`` times as fast
(tempo and pitch change together, like sox's ``speed`` effect; the length becomes ``L / f``) and written
as 16-bit FLAC to ``<audio_dir>/sp<f>/<uttid>.flac`` (default ``<out_dir>.audio``, next to the data
directory, which is written under a temporary name and renamed); its id becomes ``sp<f>-<uttid>`` and its
speaker ``sp<f>-<speaker>`` (ESPnet's naming). Factor 1 keeps the original utterances as they are. The
output data directory (ESPnet names it ``<set>_sp``) holds all of them: wav.scp, text, utt2spk, spk2utt.
Files already written by an earlier, interrupted run are kept when they have the expected length.
"""
import logging
import math
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile
import torch
import torchaudio
from tqdm import tqdm

from espnet_lrsms.fileio import read_kaldi_table
from espnet_lrsms.recipe.data_prep import DataPrepError, write_kaldi_data_dir

logger = logging.getLogger(__name__)


def factor_name(factor: float) -> str:
    """``0.9`` → ``"0.9"``, ``1.10`` → ``"1.1"`` (the ``sp<f>-`` prefix)."""
    return f"{factor:g}"


def perturbed_length(length: int, factor: float, fs: int) -> int:
    """Samples after resampling ``length`` samples from ``fs·factor`` Hz to ``fs`` Hz."""
    source = round(fs * factor)
    return -(-length * fs // source)  # torchaudio's resample: ceil(length · new / orig)


def speed_perturb(wave: np.ndarray, factor: float, fs: int) -> np.ndarray:
    """``wave`` (1-D, at ``fs`` Hz) played ``factor`` times as fast: read as ``fs·factor`` Hz, resampled to ``fs``."""
    source = fs * Fraction(str(factor))
    if source.denominator != 1:
        raise ValueError(f"speed factor {factor} at {fs} Hz needs a whole source rate, got {float(source)} Hz")
    out = torchaudio.functional.resample(torch.from_numpy(np.asarray(wave, dtype=np.float32)), int(source), fs)
    return out.clamp(-1.0, 1.0 - 2.0**-15).numpy()


def _perturb_one(job: Tuple[str, Path, float, Path]) -> Tuple[str, int]:
    uttid, source, factor, target = job
    wave, fs = soundfile.read(str(source), dtype="float32")
    if wave.ndim != 1:
        raise DataPrepError(f"{source} ({uttid}): expected mono audio, got {wave.shape[1]} channels")
    expected = perturbed_length(wave.size, factor, fs)
    if target.is_file() and soundfile.info(str(target)).frames == expected:
        return uttid, expected  # written by an earlier run
    perturbed = speed_perturb(wave, factor, fs)
    tmp = target.with_name(target.name + ".tmp.flac")
    soundfile.write(str(tmp), perturbed, fs, subtype="PCM_16")
    tmp.replace(target)
    return uttid, perturbed.size


def perturb_data_dir(data_dir: Path, out_dir: Path, factors: Sequence[float], nj: int = 1,
                     audio_dir: Optional[Path] = None) -> int:
    """Write the speed-perturbed copy of ``data_dir`` to ``out_dir``; returns the number of utterances."""
    bad = [f for f in factors if not math.isfinite(f) or f <= 0]
    if not factors or bad:
        raise DataPrepError(f"--speed_perturb_factors: expected positive finite factors, got {bad[0] if bad else 'none'} "
                            f"in {list(factors)}")
    if len(set(factor_name(f) for f in factors)) != len(factors):
        raise DataPrepError(f"--speed_perturb_factors: a factor is given twice in {list(factors)}")
    for name in ("wav.scp", "text", "utt2spk"):
        if not (data_dir / name).is_file():
            raise DataPrepError(f"{data_dir / name}: no such file (stage 1 makes it)")
    wav = read_kaldi_table(data_dir / "wav.scp")
    text = read_kaldi_table(data_dir / "text")
    utt2spk = read_kaldi_table(data_dir / "utt2spk")
    for uttid, path in wav.items():
        if path.rstrip().endswith("|"):
            raise DataPrepError(f"{data_dir / 'wav.scp'}: {uttid} is a command ({path!r}); speed perturbation reads audio files")
    tables: Dict[str, Dict[str, str]] = {"wav.scp": {}, "text": {}}
    speakers: Dict[str, str] = {}
    jobs: List[Tuple[str, Path, float, Path]] = []
    audio_root = (audio_dir or out_dir.with_name(out_dir.name + ".audio")).resolve()
    for factor in factors:
        prefix = "" if factor == 1 else f"sp{factor_name(factor)}-"
        if factor != 1:
            (audio_root / f"sp{factor_name(factor)}").mkdir(parents=True, exist_ok=True)
        for uttid, path in wav.items():
            new_id = prefix + uttid
            if factor == 1:
                tables["wav.scp"][new_id] = path
            else:
                target = audio_root / f"sp{factor_name(factor)}" / f"{uttid}.flac"
                tables["wav.scp"][new_id] = str(target)
                jobs.append((uttid, Path(path), factor, target))
            tables["text"][new_id] = text[uttid]
            speakers[new_id] = prefix + utt2spk[uttid]
    logger.info("speed perturbation of %s by %s: %d utterances to resample", data_dir, list(factors), len(jobs))
    if nj > 1:
        with ProcessPoolExecutor(max_workers=nj) as pool:
            for _ in tqdm(pool.map(_perturb_one, jobs, chunksize=16), total=len(jobs), desc="speed perturbation", unit="utt"):
                pass
    else:
        for job in tqdm(jobs, desc="speed perturbation", unit="utt"):
            _perturb_one(job)
    write_kaldi_data_dir(out_dir, tables, speakers)
    return len(tables["wav.scp"])
