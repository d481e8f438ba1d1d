"""AVSR decoding: ESPnet's ``Speech2Text`` and the ASR command's decode loop, on audio, video or both.

The library behind ``espnet_lrsms.bin.avsr_inference`` and the SNR sweep (:mod:`espnet_lrsms.recipe.avsr_snr_sweep`).
:class:`AVSRSpeech2Text` is ESPnet's ``Speech2Text`` (its beam search, scorers ``decoder``, ``ctc``,
``length_bonus`` and an optional ``lm``, weights, n-best, token converter and tokenizer) with two things of
its own: the model is built by :class:`AVSRTask` (a fusion LM by :class:`LoRALMTask`), and the encoder input is
the waveform and/or the mouth-crop frames (:meth:`ESPnetAVSRModel.encode`). :func:`inference` decodes a data
directory as the ASR command does (:func:`espnet_lrsms.asr.inference.decode_data_dir`, ESPnet's ``inference()``
as one loop), into ESPnet's ``<output_dir>/<n>best_recog/{text,token,token_int,score}`` and
``score_components``. Modality ``audio`` or ``video`` decodes with the other stream missing (zero features, as
modality dropout in training); giving only one stream does the same. The audio is checked as the ASR command checks it
(:mod:`espnet_lrsms.asr.input_audio`): before a data directory is decoded, every utterance of its ``wav.scp``
must be mono, at the rate the model was trained on and finite (:class:`AudioInputError` naming the file and
each faulty utterance); a waveform given to :class:`AVSRSpeech2Text` must be mono and finite, and at that rate
when its ``fs`` is given. An utterance too short for a front end (ESPnet's ``TooShortUttError``, e.g.
audio under one 40 ms ``resnet1d`` frame) gets ESPnet's empty hypothesis (text ``" "``, token ``<space>``,
id 2, score 0) and a warning, and decoding goes on.
"""
import argparse
import inspect
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from espnet2.bin import asr_inference as espnet_asr_inference
from espnet2.torch_utils.device_funcs import to_device

from espnet_lrsms.asr.inference import LowRankSpeech2Text, decode_data_dir
from espnet_lrsms.asr.input_audio import AudioInputError, audio_faults, check_decoding_inputs, trained_sampling_rate
from espnet_lrsms.avsr.task import AVSRTask
from espnet_lrsms.lm.task import LoRALMTask
from espnet_lrsms.packing import unpack_model

MODALITIES = ("av", "audio", "video")


def check_modality(modality: str) -> str:
    """``modality`` if it is one of :data:`MODALITIES`; else a ValueError naming it."""
    if modality not in MODALITIES:
        raise ValueError(f"modality: expected one of {MODALITIES}, got {modality!r}")
    return modality


class AVSRSpeech2Text(LowRankSpeech2Text):
    """ESPnet's ``Speech2Text`` for an AVSR model: decodes one utterance from its waveform, its mouth-crop
    frames, or both.

    Args:
        asr_train_config, asr_model_file: the training ``config.yaml`` and a checkpoint (:meth:`from_pack`
            finds them in stage 14's pack).
        modality: ``av``, ``audio`` (video ignored) or ``video`` (audio ignored); may be changed between calls.
        **kwargs: ESPnet's ``Speech2Text`` options (``beam_size``, ``ctc_weight``, ``lm_train_config``,
            ``lm_file``, ``lm_weight``, ``penalty``, ``nbest``, ``maxlenratio``, ``device``, ...); an LM is one of
            this project's (base or LoRA-adapted, built by :class:`LoRALMTask`).

    Call: ``speech`` (L,) and/or ``video`` (T, H, W) → n-best list of (text, tokens, token ids, hyp); ``fs``: the
    waveform's rate, checked against the model's (:attr:`fs`); ``utt_id``: the name an error gives the input.
    """

    asr_task = AVSRTask
    lm_task = LoRALMTask
    fuse_projections = False

    def __init__(self, asr_train_config=None, asr_model_file=None, *, modality: str = "av", **kwargs):
        self.modality = check_modality(modality)
        self.fs = trained_sampling_rate(asr_train_config)  # the rate of the audio the model was trained on
        super().__init__(asr_train_config, asr_model_file, **kwargs)
        search = self.beam_search
        if self.asr_model.decoder is None and search is not None and search.weights.get("decoder", 0) > 0:
            raise ValueError(f"ctc_weight: the model has no attention decoder, so it must be 1.0, "
                             f"got {search.weights['ctc']}")

    @classmethod
    def from_pretrained(cls, model_tag: Optional[str] = None, **kwargs) -> "AVSRSpeech2Text":
        """ESPnet's ``from_pretrained`` for this class (the decode loop builds its decoder so)."""
        if model_tag is not None:
            raise ValueError(f"model_tag {model_tag!r}: AVSR models are not in ESPnet's model zoo; give "
                             "asr_train_config and asr_model_file, or a pack to from_pack")
        return cls(**kwargs)

    @classmethod
    def from_pack(cls, pack: Union[str, Path], unpack_dir: Optional[Union[str, Path]] = None,
                  **kwargs) -> "AVSRSpeech2Text":
        """Load stage 14's pack (see :func:`unpack_avsr_pack`) with ``kwargs`` (this class's options)."""
        config, model = unpack_avsr_pack(pack, unpack_dir)
        return cls(config, model, **kwargs)

    @torch.no_grad()
    def __call__(self, speech=None, video=None, *, fs: Optional[int] = None, utt_id: str = "speech") -> list:
        """The n-best list (text, tokens, token ids, hypothesis) of ``speech`` (L,) and/or ``video`` (T, H, W),
        each a tensor or an array; a stream the modality does not use is ignored, a missing one counts as zeros.
        A waveform that is not mono, not finite, or (``fs`` given) not at the model's rate is refused
        (:class:`AudioInputError` naming ``utt_id``)."""
        if self.modality == "audio":
            video = None
        elif self.modality == "video":
            speech = None
        if speech is None and video is None:
            raise ValueError(f"nothing to decode: modality {self.modality!r} but no such stream was given")
        if speech is not None:
            check_waveform(speech, utt_id, fs, self.fs)
            if np.ndim(speech) == 2:
                speech = speech[:, 0]  # (L, 1): mono
        batch = {}
        for name, stream in (("speech", speech), ("video", video)):
            if stream is not None:
                stream = stream if isinstance(stream, torch.Tensor) else torch.as_tensor(np.asarray(stream))
                batch[name] = stream.to(getattr(torch, self.dtype)).unsqueeze(0)
                batch[f"{name}_lengths"] = torch.tensor([stream.size(0)], dtype=torch.long)
        enc, _ = self.asr_model.encode(**to_device(batch, device=self.device))
        return self._decode_single_sample(enc[0])


def check_waveform(speech, utt_id: str, fs: Optional[int], expected_fs: Optional[int]) -> None:
    """:class:`AudioInputError` naming ``utt_id`` and its faults (:func:`espnet_lrsms.asr.input_audio.audio_faults`)
    when ``speech`` ((L,) or (L, channels)) is not mono, not finite, or ``fs`` (when given) is not ``expected_fs``."""
    wave = speech.detach().cpu().numpy() if isinstance(speech, torch.Tensor) else np.asarray(speech)
    if wave.ndim not in (1, 2):
        raise AudioInputError(f"{utt_id}: expected a waveform of shape (samples,) or (samples, channels), "
                              f"got shape {wave.shape}")
    faults = audio_faults(utt_id, expected_fs if fs is None else fs, wave.reshape(len(wave), -1), expected_fs)
    if faults:
        raise AudioInputError("; ".join(faults))


def unpack_avsr_pack(pack: Union[str, Path], unpack_dir: Optional[Union[str, Path]] = None) -> Tuple[str, str]:
    """(training config, checkpoint) of stage 14's ``pack``, unpacked by ESPnet's ``unpack`` after checking
    every member and ``meta.yaml`` path (:func:`espnet_lrsms.packing.unpack_model`) into ``unpack_dir``
    (default ``<pack without .zip>/``). A pack that names anything outside ``unpack_dir`` is refused
    (``ValueError``)."""
    pack = Path(pack)
    if not pack.is_file():
        raise FileNotFoundError(f"{pack}: no such pack (avsr.sh stage 14, with --skip_packing false, "
                                "writes <exp>/<exp name>_<model>.zip)")
    files = unpack_model(pack, unpack_dir or pack.with_suffix(""))
    return str(files["asr_train_config"]), str(files["asr_model_file"])


def espnet_defaults() -> Dict[str, object]:
    """Every argument of ESPnet's ``inference()`` with its command-line default."""
    parser = espnet_asr_inference.get_parser()
    return {name: parser.get_default(name) for name in inspect.signature(espnet_asr_inference.inference).parameters}


def inference(
    output_dir: str,
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    asr_train_config: str,
    asr_model_file: str,
    modality: str = "av",
    **kwargs,
) -> None:
    """Decode every utterance of the data given and write ``<output_dir>/<n>best_recog/*``: the decode loop
    (``kwargs``: the arguments of ESPnet's ``inference()``, their command-line defaults where left out) with
    :class:`AVSRSpeech2Text` in ``modality`` and :class:`AVSRTask`'s data iterator."""
    names = {name for _, name, _ in data_path_and_name_and_type}
    if not names <= {"speech", "video"} or not names:
        raise ValueError(f"--data_path_and_name_and_type: expected the names speech and/or video, got {sorted(names)}")
    check_modality(modality)
    for option, path in (("--asr_train_config", asr_train_config), ("--asr_model_file", asr_model_file)):
        if path is None:
            raise ValueError(f"{option}: required (the AVSR model to decode with)")
    unknown = set(kwargs) - set(espnet_defaults())
    if unknown:
        raise TypeError(f"inference(): unknown argument(s) {sorted(unknown)} (ESPnet's inference() takes the others)")

    class ModalitySpeech2Text(AVSRSpeech2Text):
        """:class:`AVSRSpeech2Text` in this run's modality (the decode loop passes ESPnet's options only)."""

        def __init__(self, *args, **options):
            super().__init__(*args, modality=modality, **options)

    arguments = dict(espnet_defaults(), **kwargs)
    triples = [tuple(map(str, t)) for t in data_path_and_name_and_type]
    if modality != "video":  # the audio it decodes: every utterance named before anything is decoded
        check_decoding_inputs(triples, arguments["key_file"], trained_sampling_rate(asr_train_config))
    arguments.update(output_dir=str(output_dir), asr_train_config=str(asr_train_config),
                     asr_model_file=str(asr_model_file),
                     data_path_and_name_and_type=triples)
    if arguments["key_file"] is not None:
        arguments["key_file"] = str(arguments["key_file"])
    decode_data_dir(ModalitySpeech2Text, **arguments)


def get_parser(description: Optional[str] = None) -> argparse.ArgumentParser:
    """ESPnet's ``asr_inference`` options (every one :func:`inference` takes, with ``--config``) and ``--modality``."""
    parser = espnet_asr_inference.get_parser()
    parser.description = description
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--modality", choices=MODALITIES, default="av", help="streams used; others count as missing")
    return parser
