"""Additive noise at a target signal-to-noise ratio, and babble made from other utterances.

SNR here is ``10·log10(P_speech / P_noise)`` with ``P`` the mean square over the whole utterance
(the noise as added, after looping/cropping and scaling). The paper's Table III evaluates at
−7.5, −2.5, 2.5, 7.5 and 12.5 dB with NOISEX babble; where that recording is not available,
:func:`make_babble` sums other utterances instead.
"""
from typing import Optional, Sequence

import numpy as np


def snr_db(speech: np.ndarray, noise: np.ndarray) -> float:
    """``10·log10(mean(speech²) / mean(noise²))`` over the whole arrays."""
    return float(10.0 * np.log10(np.mean(np.square(speech, dtype=np.float64)) / np.mean(np.square(noise, dtype=np.float64))))


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
    speech_power = np.mean(speech**2)
    noise_power = np.mean(segment**2)
    if speech_power == 0:
        raise ValueError("speech is silent (zero power): its SNR is undefined")
    if noise_power == 0:
        raise ValueError("the noise segment is silent (zero power): it cannot be scaled to an SNR")
    gain = np.sqrt(speech_power / (noise_power * 10.0 ** (snr / 10.0)))
    return speech + gain * segment


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
