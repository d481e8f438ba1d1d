"""Additive noise at a target signal-to-noise ratio, and babble made from other utterances.

SNR here is ESPnet's, the one its preprocessor uses for training noise (``--noise_db_range``):
``10·log10(P_speech / P_noise)``, ``P_speech`` the mean square over the speech's non-silent samples
(:func:`speech_power`), ``P_noise`` over the whole noise segment as added (after looping/cropping). One
definition for training and test, so that a training SNR and a test SNR of the same number are the same
condition (with whole-utterance speech power, a clip that is 25 % silence would be tested 1.25 dB cleaner
than it was trained at the same number). The paper's Table III evaluates at
−7.5, −2.5, 2.5, 7.5 and 12.5 dB with NOISEX babble; where that recording is not available,
:func:`make_babble` sums other utterances instead. :func:`mix_noise_into_data_dir` makes a noisy copy
of a whole ESPnet data directory (``espnet_lrsms.bin.avsr_mix_noise``, AVSR stage 17).
"""
import logging
import shutil
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import soundfile

logger = logging.getLogger(__name__)


def non_silent(speech: np.ndarray, threshold: float = 0.01, frame: int = 1024, hop: int = 512) -> np.ndarray:
    """ESPnet's power-based voice activity (``espnet2.train.preprocessor.detect_non_silence`` on one channel,
    without importing it: that module takes ~15 s to import): 1024-sample frames every 512 (zero-padded at
    the end), a frame is speech when its mean power exceeds ``threshold`` × the mean over frames, and marks its
    first ``hop`` samples; the tail repeats the last mark. Boolean mask, shape of ``speech``."""
    speech = np.asarray(speech, dtype=np.float64)
    if speech.size < frame:
        return np.ones(speech.shape, dtype=bool)
    padded = np.pad(speech, (0, (-(speech.size - frame) % hop) % frame))
    count = (padded.size - frame) // hop + 1
    power = np.stack([np.mean(padded[t * hop:t * hop + frame] ** 2) for t in range(count)])
    if not np.any(power):
        return np.ones(speech.shape, dtype=bool)
    marks = np.repeat(power / power.mean() > threshold, hop)
    return np.pad(marks, (0, speech.size - marks.size), mode="edge")


def speech_power(speech: np.ndarray) -> float:
    """Mean power of ``speech`` over its non-silent samples (:func:`non_silent`), as ESPnet's preprocessor
    measures it for ``--noise_db_range``."""
    speech = np.asarray(speech, dtype=np.float64)
    return float(np.mean(speech[non_silent(speech)] ** 2))


def snr_db(speech: np.ndarray, noise: np.ndarray) -> float:
    """``10·log10(speech_power(speech) / mean(noise²))``: ESPnet's training-noise SNR (speech power over its
    non-silent samples, noise power over the whole segment), used for the test sweep too."""
    return float(10.0 * np.log10(speech_power(speech) / np.mean(np.square(noise, dtype=np.float64))))


def loop_to_length(signal: np.ndarray, length: int, offset: int = 0) -> np.ndarray:
    """``signal`` repeated end to end as often as needed, read from ``offset`` for ``length`` samples."""
    if signal.ndim != 1 or signal.size == 0:
        raise ValueError(f"expected a non-empty 1-D signal, got shape {signal.shape}")
    index = (offset + np.arange(length)) % signal.size
    return signal[index]


def mix_at_snr(
    speech: np.ndarray,
    noise: np.ndarray,
    snr: float,
    rng: Optional[np.random.Generator] = None,
    offset: Optional[int] = None,
) -> np.ndarray:
    """``speech + g·n`` where ``n`` is ``noise`` looped/cropped to the speech's length and ``g`` makes
    ``snr_db(speech, g·n) == snr``.

    Args:
        speech: (L,) waveform.
        noise: (N,) waveform at the same sampling rate; any length (looped when shorter).
        snr: target SNR in dB.
        rng: draws the noise start offset uniformly in [0, N) when ``offset`` is None
            (a fresh unseeded generator if both are None).
        offset: noise start sample (wraps around).
    Returns:
        (L,) float64 mixture.
    """
    speech = np.asarray(speech, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if speech.ndim != 1 or speech.size == 0:
        raise ValueError(f"speech: expected a non-empty 1-D waveform, got shape {speech.shape}")
    if offset is None:
        offset = int((rng or np.random.default_rng()).integers(0, noise.size))
    segment = loop_to_length(noise, speech.size, offset)
    if not np.any(speech):
        raise ValueError("speech is silent (zero power): its SNR is undefined")
    if not np.any(segment):
        raise ValueError("the noise segment is silent (zero power): it cannot be scaled to an SNR")
    # ESPnet's preprocessor: noise scaled by 10^(-snr/20)·sqrt(speech_power / mean(noise²)), power floor 1e-10
    scale = 10 ** (-snr / 20) * np.sqrt(speech_power(speech)) / np.sqrt(max(float(np.mean(segment ** 2)), 1e-10))
    return speech + scale * segment


def make_babble(
    utterances: Sequence[np.ndarray], length: int, rng: Optional[np.random.Generator] = None
) -> np.ndarray:
    """Babble of ``length`` samples: the sum of ``utterances``, each looped from a random offset and
    scaled to unit RMS first so that every talker is equally loud.
    """
    if not utterances:
        raise ValueError("babble needs at least one utterance")
    rng = rng or np.random.default_rng()
    babble = np.zeros(length, dtype=np.float64)
    for utterance in utterances:
        utterance = np.asarray(utterance, dtype=np.float64)
        rms = np.sqrt(np.mean(utterance**2)) if utterance.size else 0.0
        if rms == 0:
            raise ValueError("a babble utterance is empty or silent")
        babble += loop_to_length(utterance / rms, length, int(rng.integers(0, utterance.size)))
    return babble


class NoiseMixError(ValueError):
    """A data directory or noise that cannot be mixed; the message names the file, option or utterance."""


def utterance_rng(seed: int, utt_id: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(utt_id.encode("utf-8"))])


def _mono(signal: np.ndarray, what: str) -> np.ndarray:
    if signal.ndim == 2 and signal.shape[1] == 1:
        signal = signal[:, 0]
    if signal.ndim != 1:
        raise ValueError(f"{what}: expected mono audio, got shape {signal.shape}")
    return signal.astype(np.float64)


def mix_noise_into_data_dir(
    data_dir: Path,
    output_dir: Path,
    snr: float,
    noise: Optional[Path] = None,
    babble_speakers: int = 6,
    babble_scp: Optional[Path] = None,
    seed: int = 0,
) -> int:
    """Write a copy of the ESPnet data directory ``data_dir`` to ``output_dir`` with noise at ``snr`` dB
    added to every utterance of its ``wav.scp``; return the number of utterances.

    ``noise``: that recording, looped or cropped from a random start; None: babble, the sum of
    ``babble_speakers`` other utterances of ``babble_scp`` (default: ``data_dir``'s ``wav.scp``). Random
    choices come from ``(seed, utterance id)``. The mixtures are 16-bit wav files under
    ``<output_dir>/wav/`` (one that would clip is scaled down as a whole); every other file of
    ``data_dir`` is copied. Raises :class:`NoiseMixError` naming what is missing or mismatched.
    """
    from espnet2.fileio.sound_scp import SoundScpReader

    wav_scp = data_dir / "wav.scp"
    if not wav_scp.is_file():
        raise NoiseMixError(f"{wav_scp}: no such file")
    if output_dir.resolve() == data_dir.resolve():
        raise NoiseMixError("--output_dir must differ from --data_dir")
    speech_reader = SoundScpReader(str(wav_scp), dtype="float64")
    noise_signal = noise_rate = None
    babble_reader = babble_keys = None
    if noise is not None:
        if not noise.is_file():
            raise NoiseMixError(f"--noise {noise}: no such file")
        noise_signal, noise_rate = soundfile.read(str(noise), dtype="float64")
        noise_signal = _mono(noise_signal, str(noise))
    else:
        if babble_speakers < 1:
            raise NoiseMixError(f"--babble_speakers must be >= 1, got {babble_speakers}")
        babble_scp = babble_scp or wav_scp
        babble_reader = SoundScpReader(str(babble_scp), dtype="float64")
        babble_keys = sorted(babble_reader.keys())
        if len(babble_keys) < babble_speakers + 1:
            raise NoiseMixError(
                f"{babble_scp} has {len(babble_keys)} utterances: too few for {babble_speakers} babble talkers"
            )

    wav_dir = output_dir / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    for item in data_dir.iterdir():
        if item.is_file() and item.name != "wav.scp":
            shutil.copy2(item, output_dir / item.name)
    lines = []
    for utt_id in speech_reader.keys():
        rate, speech = speech_reader[utt_id]
        speech = _mono(speech, f"{wav_scp}: {utt_id}")
        rng = utterance_rng(seed, utt_id)
        if noise_signal is not None:
            if noise_rate != rate:
                raise NoiseMixError(f"{noise} is at {noise_rate} Hz but {utt_id} is at {rate} Hz")
            mixture = mix_at_snr(speech, noise_signal, snr, rng=rng)
        else:
            talkers = [k for k in babble_keys if k != utt_id]
            chosen = rng.choice(len(talkers), size=babble_speakers, replace=False)
            sources = []
            for index in chosen:
                talker_rate, talker = babble_reader[talkers[index]]
                if talker_rate != rate:
                    raise NoiseMixError(
                        f"babble talker {talkers[index]} is at {talker_rate} Hz but {utt_id} is at {rate} Hz"
                    )
                sources.append(_mono(talker, talkers[index]))
            mixture = mix_at_snr(speech, make_babble(sources, speech.size, rng), snr, offset=0)
        peak = np.max(np.abs(mixture))
        if peak >= 1.0:
            mixture = mixture * (0.99 / peak)
        path = wav_dir / f"{utt_id}.wav"
        soundfile.write(str(path), mixture, rate, subtype="PCM_16")
        lines.append(f"{utt_id} {path.resolve()}\n")
    (output_dir / "wav.scp").write_text("".join(lines), encoding="utf-8")
    logger.info("wrote %d utterances at %g dB SNR to %s", len(lines), snr, output_dir)
    return len(lines)
