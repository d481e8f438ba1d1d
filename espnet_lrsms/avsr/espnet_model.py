"""ESPnet's CTC/attention model with an audio and a video stream fused before one encoder."""
import logging
from typing import Dict, List, Optional, Tuple, Union

import torch
from espnet2.asr.ctc import CTC
from espnet2.asr.decoder.abs_decoder import AbsDecoder
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.espnet_model import ESPnetASRModel
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.torch_utils.device_funcs import force_gatherable
from typeguard import typechecked

from espnet_lrsms.avsr.fusion import MLPFusion


class ESPnetAVSRModel(ESPnetASRModel):
    """Audio front end + video front end → frame-wise fusion → encoder → CTC and attention decoder.

    Inputs are the two streams ESPnet's data loader gives under the names ``speech`` (16 kHz
    waveform, ``wav.scp``) and ``video`` (grey mouth crops at 25 frames/s, ``video.scp``). Both front
    ends give 25 frames/s (the audio one: ``samples // 640`` frames).

    Length alignment: each utterance keeps ``min(audio frames, video frames)`` frames; the longer
    stream's tail is dropped (in LRS3 the two differ by a frame or so; a difference above
    ``max_frame_mismatch`` frames is logged as a warning).

    A missing stream (``speech`` or ``video`` None) is replaced by zero features with the other
    stream's lengths: exactly what modality dropout does in training, so a model trained with it
    decodes audio-only or video-only input. Modality dropout zeroes, per training utterance, the
    audio features with probability ``audio_dropout_prob``, else the video features with probability
    ``video_dropout_prob`` (never both; the two must sum to at most 1).

    Only the CTC/attention branch of ``ESPnetASRModel`` is supported (no transducer, no
    intermediate CTC). All other arguments are ``ESPnetASRModel``'s.

    Args:
        video_frontend: video → (B, T_v, D_v) features (e.g. :class:`ResNet2DVideoFrontend`).
        fusion: (B, T, D_a), (B, T, D_v) → (B, T, d_model) (e.g. :class:`MLPFusion`).
        audio_dropout_prob: probability of zeroing a training utterance's audio features.
        video_dropout_prob: probability of zeroing a training utterance's video features.
        max_frame_mismatch: audio/video frame-count difference above which a warning is logged.
    """

    @typechecked
    def __init__(
        self,
        vocab_size: int,
        token_list: Union[Tuple[str, ...], List[str]],
        frontend: AbsFrontend,
        video_frontend: AbsFrontend,
        fusion: MLPFusion,
        specaug: Optional[AbsSpecAug],
        encoder: AbsEncoder,
        decoder: Optional[AbsDecoder],
        ctc: CTC,
        audio_dropout_prob: float = 0.0,
        video_dropout_prob: float = 0.0,
        max_frame_mismatch: int = 3,
        **kwargs,
    ):
        for name in ("normalize", "preencoder", "postencoder", "joint_network"):
            if kwargs.pop(name, None) is not None:
                raise ValueError(f"the AVSR model does not support a {name}")
        if kwargs.get("interctc_weight", 0.0):
            raise ValueError("model_conf.interctc_weight: intermediate CTC is not supported by the AVSR model")
        for name, prob in (("audio_dropout_prob", audio_dropout_prob), ("video_dropout_prob", video_dropout_prob)):
            if not 0.0 <= prob <= 1.0:
                raise ValueError(f"model_conf.{name}: expected a probability, got {prob}")
        if audio_dropout_prob + video_dropout_prob > 1.0:
            raise ValueError(
                f"model_conf: audio_dropout_prob + video_dropout_prob must be <= 1 (never both dropped), "
                f"got {audio_dropout_prob} + {video_dropout_prob}"
            )
        if fusion.audio_size != frontend.output_size() or fusion.video_size != video_frontend.output_size():
            raise ValueError(
                f"fusion expects audio/video sizes {fusion.audio_size}/{fusion.video_size}, the front ends give "
                f"{frontend.output_size()}/{video_frontend.output_size()}"
            )
        super().__init__(
            vocab_size=vocab_size,
            token_list=token_list,
            frontend=frontend,
            specaug=specaug,
            normalize=None,
            preencoder=None,
            encoder=encoder,
            postencoder=None,
            decoder=decoder,
            ctc=ctc,
            joint_network=None,
            **kwargs,
        )
        if self.use_transducer_decoder or getattr(self, "use_linear_decoder", False):
            raise ValueError("the AVSR model supports only an attention decoder (or none, with ctc_weight 1)")
        self.video_frontend = video_frontend
        self.fusion = fusion
        self.audio_dropout_prob = audio_dropout_prob
        self.video_dropout_prob = video_dropout_prob
        self.max_frame_mismatch = max_frame_mismatch

    def modality_dropout_masks(self, batch_size: int, device=None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Two (B,) bool tensors: whose audio and whose video to zero (never both for one utterance)."""
        draw = torch.rand(batch_size, device=device)
        drop_audio = draw < self.audio_dropout_prob
        drop_video = (~drop_audio) & (draw < self.audio_dropout_prob + self.video_dropout_prob)
        return drop_audio, drop_video

    def encode_streams(
        self,
        speech: Optional[torch.Tensor],
        speech_lengths: Optional[torch.Tensor],
        video: Optional[torch.Tensor],
        video_lengths: Optional[torch.Tensor],
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Both front ends, aligned: audio (B, T, D_a), video (B, T, D_v), lengths (B,).

        A missing stream comes back as zeros; in training, modality dropout is applied.
        """
        if speech is None and video is None:
            raise ValueError("the AVSR model needs speech, video or both")
        audio_feats = video_feats = None
        if speech is not None:
            speech = speech[:, : speech_lengths.max()]
            audio_feats, audio_lengths = self.frontend(speech, speech_lengths)
            if self.specaug is not None and self.training:
                audio_feats, audio_lengths = self.specaug(audio_feats, audio_lengths)
        if video is not None:
            video = video[:, : video_lengths.max()]
            video_feats, video_lengths = self.video_frontend(video, video_lengths)
        if audio_feats is None:
            lengths = video_lengths
            audio_feats = video_feats.new_zeros(*video_feats.shape[:2], self.frontend.output_size())
        elif video_feats is None:
            lengths = audio_lengths
            video_feats = audio_feats.new_zeros(*audio_feats.shape[:2], self.video_frontend.output_size())
        else:
            mismatch = (audio_lengths - video_lengths).abs().max()
            if mismatch > self.max_frame_mismatch:
                logging.warning(
                    "audio and video frame counts differ by up to %d frames (audio %s, video %s); "
                    "each utterance is cut to the shorter",
                    int(mismatch),
                    audio_lengths.tolist(),
                    video_lengths.tolist(),
                )
            lengths = torch.minimum(audio_lengths, video_lengths)
        frames = min(audio_feats.size(1), video_feats.size(1))
        audio_feats, video_feats = audio_feats[:, :frames], video_feats[:, :frames]
        valid = (torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]).unsqueeze(-1)
        audio_feats = audio_feats * valid.to(audio_feats.dtype)
        video_feats = video_feats * valid.to(video_feats.dtype)
        if self.training and (self.audio_dropout_prob > 0 or self.video_dropout_prob > 0):
            drop_audio, drop_video = self.modality_dropout_masks(lengths.size(0), lengths.device)
            audio_feats = audio_feats * (~drop_audio)[:, None, None].to(audio_feats.dtype)
            video_feats = video_feats * (~drop_video)[:, None, None].to(video_feats.dtype)
        return audio_feats, video_feats, lengths

    def encode(
        self,
        speech: Optional[torch.Tensor] = None,
        speech_lengths: Optional[torch.Tensor] = None,
        video: Optional[torch.Tensor] = None,
        video_lengths: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Front ends + fusion + encoder.

        Args:
            speech: (B, L) 16 kHz waveform or None; speech_lengths: (B,) samples.
            video: (B, T, H, W) grey frames in [0, 255] at 25 frames/s or None; video_lengths: (B,).
        Returns:
            encoder_out (B, T', d_model), encoder_out_lens (B,).
        """
        audio_feats, video_feats, lengths = self.encode_streams(speech, speech_lengths, video, video_lengths)
        fused = self.fusion(audio_feats, video_feats, lengths)
        encoder_out, encoder_out_lens, _ = self.encoder(fused, lengths)
        if isinstance(encoder_out, tuple):
            encoder_out = encoder_out[0]
        return encoder_out, encoder_out_lens

    def forward(
        self,
        speech: Optional[torch.Tensor],
        speech_lengths: Optional[torch.Tensor],
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        video: Optional[torch.Tensor] = None,
        video_lengths: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """Front ends + fusion + encoder + CTC/attention losses.

        Args:
            speech: (B, L) waveform, speech_lengths: (B,); video: (B, T, H, W), video_lengths: (B,);
            text: (B, U) token ids, text_lengths: (B,).
        Returns:
            loss, stats (loss, loss_ctc, loss_att, acc, cer, wer, cer_ctc), batch size.
        """
        batch_size = text.size(0)
        text[text == -1] = self.ignore_id
        text = text[:, : text_lengths.max()]
        encoder_out, encoder_out_lens = self.encode(speech, speech_lengths, video, video_lengths)

        stats = {}
        loss_ctc = loss_att = None
        if self.ctc_weight != 0.0:
            loss_ctc, cer_ctc = self._calc_ctc_loss(encoder_out, encoder_out_lens, text, text_lengths)
            stats["loss_ctc"] = loss_ctc.detach()
            stats["cer_ctc"] = cer_ctc
        if self.ctc_weight != 1.0:
            loss_att, acc_att, cer_att, wer_att = self._calc_att_loss(
                encoder_out, encoder_out_lens, text, text_lengths
            )
            stats.update(loss_att=loss_att.detach(), acc=acc_att, cer=cer_att, wer=wer_att)
        if loss_att is None:
            loss = loss_ctc
        elif loss_ctc is None:
            loss = loss_att
        else:
            loss = self.ctc_weight * loss_ctc + (1 - self.ctc_weight) * loss_att
        stats["loss"] = loss.detach()
        return force_gatherable((loss, stats, batch_size), loss.device)

    def collect_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs) -> Dict[str, torch.Tensor]:
        """The audio front end's features (ESPnet's statistics stage; the AVSR model needs none)."""
        feats, feats_lengths = self.frontend(speech[:, : speech_lengths.max()], speech_lengths)
        return {"feats": feats, "feats_lengths": feats_lengths}
