"""AVSR decoding: joint CTC/attention beam search (ESPnet's ``BeamSearch``) on audio, video or both.

The library behind ``espnet_lrsms.bin.avsr_inference`` and the SNR sweep (:mod:`espnet_lrsms.recipe.avsr_sweep`).
ESPnet's ``asr_inference`` builds its model through ``ASRTask`` and feeds only ``speech``; this is
the same search (scorers ``decoder``, ``ctc``, ``length_bonus`` and an optional ESPnet ``lm``) over
:meth:`ESPnetAVSRModel.encode`. Output as ESPnet's: ``<output_dir>/<n>best_recog/{text,token,
token_int,score}``. Modality ``audio`` or ``video`` decodes with the other stream missing (zero
features, as modality dropout in training); giving only one stream does the same. An utterance too short
for a front end (ESPnet's ``TooShortUttError``, e.g. audio under one 40 ms ``resnet1d`` frame) gets ESPnet's
empty hypothesis (text ``" "``, token ``<space>``, id 2, score 0) and a warning, and decoding goes on.
"""
import argparse
import logging
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from espnet2.fileio.datadir_writer import DatadirWriter
from espnet2.text.build_tokenizer import build_tokenizer
from espnet2.text.token_id_converter import TokenIDConverter
from espnet2.torch_utils.set_all_random_seed import set_all_random_seed
from espnet2.utils import config_argparse
from espnet2.utils.types import str2triple_str, str_or_none
from espnet.nets.batch_beam_search import BatchBeamSearch
from espnet.nets.beam_search import BeamSearch, Hypothesis
from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError
from espnet.nets.scorer_interface import BatchScorerInterface
from espnet.nets.scorers.ctc import CTCPrefixScorer
from espnet.nets.scorers.length_bonus import LengthBonus

from espnet_lrsms.tasks.avsr import AVSRTask
from espnet_lrsms.tasks.lm_scorer import load_lm

MODALITIES = ("av", "audio", "video")


class AVSpeech2Text:
    """Decode one utterance from its waveform, its mouth-crop frames, or both.

    Args:
        asr_train_config, asr_model_file: the training ``config.yaml`` and a checkpoint.
        lm_train_config, lm_file: an optional LM of this project (base or LoRA-adapted), weighted by ``lm_weight``.
        beam_size, ctc_weight, penalty (length bonus), nbest, maxlenratio, minlenratio: as ESPnet's.
        modality: ``av``, ``audio`` (video ignored) or ``video`` (audio ignored).

    Call: ``speech`` (L,) and/or ``video`` (T, H, W) → n-best list of (text, tokens, token ids, hyp).
    """

    def __init__(
        self,
        asr_train_config: str,
        asr_model_file: Optional[str] = None,
        lm_train_config: Optional[str] = None,
        lm_file: Optional[str] = None,
        token_type: Optional[str] = None,
        bpemodel: Optional[str] = None,
        device: str = "cpu",
        beam_size: int = 20,
        ctc_weight: float = 0.5,
        lm_weight: float = 1.0,
        penalty: float = 0.0,
        nbest: int = 1,
        maxlenratio: float = 0.0,
        minlenratio: float = 0.0,
        modality: str = "av",
    ):
        if modality not in MODALITIES:
            raise ValueError(f"modality: expected one of {MODALITIES}, got {modality!r}")
        model, train_args = AVSRTask.build_model_from_file(asr_train_config, asr_model_file, device)
        model.eval()
        token_list = model.token_list
        scorers = dict(ctc=CTCPrefixScorer(ctc=model.ctc, eos=model.eos), length_bonus=LengthBonus(len(token_list)))
        weights = dict(ctc=ctc_weight, length_bonus=penalty)
        if model.decoder is not None and ctc_weight < 1.0:
            scorers["decoder"] = model.decoder
            weights["decoder"] = 1.0 - ctc_weight
        elif ctc_weight < 1.0:
            raise ValueError(f"ctc_weight: the model has no attention decoder, so it must be 1.0, got {ctc_weight}")
        if lm_train_config is not None:
            lm, _ = load_lm(lm_train_config, lm_file, device)  # strictly, LoRA adapters included
            scorers["lm"] = lm.lm
            weights["lm"] = lm_weight
        search_class = BeamSearch
        if all(isinstance(s, BatchScorerInterface) for k, s in scorers.items() if k != "ctc"):
            search_class = BatchBeamSearch
        self.beam_search = search_class(
            scorers=scorers,
            weights=weights,
            beam_size=beam_size,
            vocab_size=len(token_list),
            sos=model.sos,
            eos=model.eos,
            token_list=token_list,
            pre_beam_score_key=None if ctc_weight == 1.0 else "full",
        ).to(device=device).eval()
        token_type = token_type or train_args.token_type
        bpemodel = bpemodel or train_args.bpemodel
        self.tokenizer = build_tokenizer(token_type=token_type, bpemodel=bpemodel) if token_type else None
        self.converter = TokenIDConverter(token_list=token_list)
        self.model = model
        self.train_args = train_args
        self.device = device
        self.nbest = nbest
        self.maxlenratio = maxlenratio
        self.minlenratio = minlenratio
        self.modality = modality

    @staticmethod
    def _batch(x, device) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        if x is None:
            return None, None
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
        return x.unsqueeze(0).to(device), torch.tensor([x.size(0)], device=device)

    @torch.no_grad()
    def __call__(self, speech=None, video=None) -> List[Tuple[Optional[str], List[str], List[int], Hypothesis]]:
        if self.modality == "audio":
            video = None
        elif self.modality == "video":
            speech = None
        if speech is None and video is None:
            raise ValueError(f"nothing to decode: modality {self.modality!r} but no such stream was given")
        speech, speech_lengths = self._batch(speech, self.device)
        video, video_lengths = self._batch(video, self.device)
        enc, _ = self.model.encode(speech, speech_lengths, video, video_lengths)
        hyps = self.beam_search(x=enc[0], maxlenratio=self.maxlenratio, minlenratio=self.minlenratio)
        results = []
        for hyp in hyps[: self.nbest]:
            last = None if hyp.yseq[-1] != self.model.eos else -1
            token_int = [int(t) for t in hyp.yseq[1:last].tolist() if int(t) != self.model.blank_id]
            tokens = self.converter.ids2tokens(token_int)
            text = self.tokenizer.tokens2text(tokens) if self.tokenizer is not None else None
            results.append((text, tokens, token_int, hyp))
        return results


def inference(
    output_dir: str,
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    asr_train_config: str,
    asr_model_file: Optional[str],
    key_file: Optional[str] = None,
    ngpu: int = 0,
    seed: int = 0,
    num_workers: int = 1,
    **speech2text_kwargs,
) -> None:
    """Decode every utterance of the data given and write ``<output_dir>/<n>best_recog/*``."""
    names = {name for _, name, _ in data_path_and_name_and_type}
    if not names <= {"speech", "video"} or not names:
        raise ValueError(f"--data_path_and_name_and_type: expected the names speech and/or video, got {sorted(names)}")
    set_all_random_seed(seed)
    device = "cuda" if ngpu >= 1 else "cpu"
    speech2text = AVSpeech2Text(asr_train_config, asr_model_file, device=device, **speech2text_kwargs)
    loader = AVSRTask.build_streaming_iterator(
        data_path_and_name_and_type,
        dtype="float32",
        batch_size=1,
        key_file=key_file,
        num_workers=num_workers,
        preprocess_fn=AVSRTask.build_preprocess_fn(speech2text.train_args, False),
        collate_fn=AVSRTask.build_collate_fn(speech2text.train_args, False),
        inference=True,
    )
    with DatadirWriter(output_dir) as writer:
        for keys, batch in loader:
            batch = {k: v[0] for k, v in batch.items() if not k.endswith("_lengths")}
            try:
                results = speech2text(speech=batch.get("speech"), video=batch.get("video"))
            except TooShortUttError as error:  # as ESPnet's asr_inference: an empty hypothesis, and go on
                logging.warning("Utterance %s %s", keys, error)
                hyp = Hypothesis(score=0.0, scores={}, states={}, yseq=[])
                results = [(" ", ["<space>"], [2], hyp)] * speech2text.nbest
            for n, (text, tokens, token_int, hyp) in enumerate(results, 1):
                best = writer[f"{n}best_recog"]
                best["token"][keys[0]] = " ".join(tokens)
                best["token_int"][keys[0]] = " ".join(map(str, token_int))
                best["score"][keys[0]] = str(float(hyp.score))
                if text is not None:
                    best["text"][keys[0]] = text


def get_parser(description: Optional[str] = None) -> argparse.ArgumentParser:
    """The decoding options (those of :func:`inference` and :class:`AVSpeech2Text`), with ``--config``."""
    parser = config_argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--data_path_and_name_and_type", type=str2triple_str, action="append", required=True)
    parser.add_argument("--key_file", type=str_or_none)
    parser.add_argument("--asr_train_config", required=True)
    parser.add_argument("--asr_model_file", required=True)
    parser.add_argument("--lm_train_config", type=str_or_none)
    parser.add_argument("--lm_file", type=str_or_none)
    parser.add_argument("--token_type", type=str_or_none, help="default: the training config's")
    parser.add_argument("--bpemodel", type=str_or_none, help="default: the training config's")
    parser.add_argument("--ngpu", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_workers", type=int, default=1)
    parser.add_argument("--beam_size", type=int, default=20)
    parser.add_argument("--ctc_weight", type=float, default=0.5)
    parser.add_argument("--lm_weight", type=float, default=1.0)
    parser.add_argument("--penalty", type=float, default=0.0, help="length bonus")
    parser.add_argument("--nbest", type=int, default=1)
    parser.add_argument("--maxlenratio", type=float, default=0.0)
    parser.add_argument("--minlenratio", type=float, default=0.0)
    parser.add_argument("--modality", choices=MODALITIES, default="av", help="streams used; others count as missing")
    parser.add_argument("--log_level", default="INFO")
    return parser
