"""Audio-visual speech recognition as an ESPnet task: ``speech`` + ``video`` → ``text``.

``AVSRTask`` is the project's :class:`LowRankASRTask` (same options, same trainer, same ``--init``
handling for factorized layers) with

- a second front end ``--video_frontend`` (``resnet2d``) and a fusion module ``--fusion`` (``mlp``),
- the model ``--model avsr`` (:class:`ESPnetAVSRModel`),
- data names: ``speech``, ``video`` and ``text`` in training; ``speech`` and/or ``video`` in
  inference (a stream left out is decoded as missing),
- two ESPnet data types for ``video.scp``: ``video_npy`` and ``video_mp4``
  (:mod:`espnet_lrsms.avsr.video_io`), and the scheduler ``warmup_cosine``.

The data types and the scheduler are registered with ESPnet by :mod:`espnet_lrsms.registration`
(``import espnet_lrsms``, which this module's imports run, also in spawned DDP workers that unpickle
``AVSRTask``).
"""
import argparse
from typing import Tuple

import torch
from espnet2.asr.ctc import CTC
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.tasks import asr as espnet_asr
from espnet2.torch_utils.initialize import initialize
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.train.class_choices import ClassChoices
from typeguard import typechecked

from espnet_lrsms.avsr.espnet_model import ESPnetAVSRModel
from espnet_lrsms.avsr.fusion import MLPFusion
from espnet_lrsms.avsr.video_frontend import ResNet2DVideoFrontend
from espnet_lrsms.asr.task import LowRankASRTask, finish_factorized_init

video_frontend_choices = ClassChoices(
    "video_frontend",
    classes=dict(resnet2d=ResNet2DVideoFrontend),
    type_check=AbsFrontend,
    default="resnet2d",
)
fusion_choices = ClassChoices(
    "fusion",
    classes=dict(mlp=MLPFusion),
    type_check=torch.nn.Module,
    default="mlp",
)
avsr_model_choices = ClassChoices(
    "model",
    classes=dict(avsr=ESPnetAVSRModel),
    type_check=AbsESPnetModel,
    default="avsr",
)


class AVSRTask(LowRankASRTask):
    """ESPnet task of the audio-visual model: ``LowRankASRTask`` + video front end + fusion."""

    class_choices_list = [
        avsr_model_choices if choices is espnet_asr.model_choices else choices
        for choices in LowRankASRTask.class_choices_list
    ] + [video_frontend_choices, fusion_choices]

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return () if inference else ("speech", "video", "text")

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("speech", "video") if inference else ()

    @classmethod
    @typechecked
    def build_model(cls, args: argparse.Namespace) -> ESPnetAVSRModel:
        if isinstance(args.token_list, str):
            with open(args.token_list, encoding="utf-8") as f:
                args.token_list = [line.rstrip() for line in f]
        if not isinstance(args.token_list, (list, tuple)):
            raise RuntimeError("token_list must be a file name or a list")
        token_list = list(args.token_list)
        vocab_size = len(token_list)

        if getattr(args, "input_size", None) is not None:
            raise ValueError(f"input_size: the AVSR model computes its features itself; got {args.input_size}")
        for name in ("normalize", "preencoder", "postencoder"):
            if getattr(args, name, None) is not None:
                raise ValueError(f"{name}: the AVSR model takes none (set `{name}: null`), got {getattr(args, name)!r}")

        frontend = espnet_asr.frontend_choices.get_class(args.frontend)(**args.frontend_conf)
        video_frontend = video_frontend_choices.get_class(args.video_frontend)(**args.video_frontend_conf)
        fusion_conf = dict(args.fusion_conf)
        fusion_conf.setdefault("output_size", args.encoder_conf.get("output_size", 256))
        fusion = fusion_choices.get_class(args.fusion)(
            audio_size=frontend.output_size(), video_size=video_frontend.output_size(), **fusion_conf
        )
        specaug = None
        if args.specaug is not None:
            specaug = espnet_asr.specaug_choices.get_class(args.specaug)(**args.specaug_conf)

        encoder = espnet_asr.encoder_choices.get_class(args.encoder)(
            input_size=fusion.output_size(), **args.encoder_conf
        )
        if args.encoder_conf.get("input_layer", "conv2d") is None and fusion.output_size() != encoder.output_size():
            raise ValueError(
                f"encoder_conf.input_layer: null needs fusion_conf.output_size == encoder_conf.output_size, got "
                f"{fusion.output_size()} and {encoder.output_size()}"
            )
        decoder = None
        if getattr(args, "decoder", None) is not None:
            decoder = espnet_asr.decoder_choices.get_class(args.decoder)(
                vocab_size=vocab_size, encoder_output_size=encoder.output_size(), **args.decoder_conf
            )
        ctc = CTC(odim=vocab_size, encoder_output_size=encoder.output_size(), **args.ctc_conf)

        model = avsr_model_choices.get_class(args.model)(
            vocab_size=vocab_size,
            token_list=token_list,
            frontend=frontend,
            video_frontend=video_frontend,
            fusion=fusion,
            specaug=specaug,
            encoder=encoder,
            decoder=decoder,
            ctc=ctc,
            **args.model_conf,
        )
        if args.init is not None:
            initialize(model, args.init)
        return finish_factorized_init(model, args)
