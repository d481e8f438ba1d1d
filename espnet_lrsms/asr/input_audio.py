"""What a decoding job checks in its ``wav.scp`` before it decodes: every utterance mono, at the sampling
rate the model was trained on, and finite.

ESPnet's loader drops the sampling rate it reads, passes a stereo entry as ``(T, 2)`` to the front end
(an unclear ``RuntimeError``) and NaN samples through to the network (an empty hypothesis with a NaN
score). Each such utterance is named here, with its fault, before anything is decoded.
"""
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

MAX_LISTED = 5  # faults named in one error message; the count says how many there are


class AudioInputError(ValueError):
    """Audio that a model cannot decode as it is; the message names the file and each utterance."""


def audio_faults(key: str, rate: int, wave: np.ndarray, expected_rate: Optional[int]) -> List[str]:
    """The faults of one utterance (``wave``: samples × channels), each as ``"<key>: <fault>"``."""
    faults = []
    if wave.ndim == 2 and wave.shape[1] != 1:
        faults.append(f"{key}: {wave.shape[1]} channels (the model takes one; mix down, e.g. sox in.wav -c 1 out.wav)")
    if expected_rate is not None and rate != expected_rate:
        faults.append(f"{key}: {rate} Hz (the model was trained on {expected_rate} Hz audio; resample it, "
                      f"e.g. sox in.wav -r {expected_rate} out.wav)")
    if np.issubdtype(wave.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(wave)))
        if bad:
            faults.append(f"{key}: {bad} of {wave.size} samples are NaN or infinite")
    return faults


def check_sound_scp(wav_scp: Union[str, Path], keys: Optional[Iterable[str]] = None,
                    expected_rate: Optional[int] = None) -> int:
    """Read every utterance of ``wav_scp`` (those of ``keys`` only, when given) with ESPnet's own reader,
    as decoding will; :class:`AudioInputError` naming the file and the faulty utterances (:func:`audio_faults`).
    Returns the number of utterances checked."""
    from espnet2.fileio.sound_scp import SoundScpReader

    if not Path(wav_scp).is_file():
        raise AudioInputError(f"{wav_scp}: no such file")
    reader = SoundScpReader(str(wav_scp), always_2d=True)
    faults: List[str] = []
    count = 0
    for key in (reader.keys() if keys is None else keys):
        try:
            rate, wave = reader[key]
        except KeyError:
            raise AudioInputError(f"{wav_scp}: no entry for utterance {key}") from None
        except Exception as error:  # libsndfile's and the pipe's own words, with the utterance
            faults.append(f"{key}: unreadable ({type(error).__name__}: {str(error)[:120]})")
            continue
        faults += audio_faults(key, rate, np.asarray(wave), expected_rate)
        count += 1
    if faults:
        listed = "; ".join(faults[:MAX_LISTED]) + (f"; and {len(faults) - MAX_LISTED} more" if len(faults) > MAX_LISTED else "")
        raise AudioInputError(f"{wav_scp}: {len(faults)} fault(s) in the audio to decode: {listed}")
    return count


def check_decoding_inputs(data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
                          key_file: Optional[str], expected_rate: Optional[int]) -> None:
    """:func:`check_sound_scp` on each ``sound`` input of ESPnet's decoding arguments."""
    keys = None
    if key_file:
        with open(key_file, encoding="utf-8") as f:
            keys = [line.split(maxsplit=1)[0] for line in f if line.strip()]
    for path, _name, kind in data_path_and_name_and_type:
        if kind == "sound":
            check_sound_scp(path, keys, expected_rate)


def trained_sampling_rate(train_config: Optional[Union[str, Path]]) -> Optional[int]:
    """The sampling rate a model's front end takes: ``frontend_conf.fs`` of its training config (``16k``
    or ``16000``), else ESPnet's and resnet1d's default, 16000; None without a config."""
    if not train_config:
        return None
    import humanfriendly
    import yaml

    with open(train_config, encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    fs = (config.get("frontend_conf") or {}).get("fs", 16000)
    return int(humanfriendly.parse_size(fs)) if isinstance(fs, str) else int(fs)
