"""ESPnet's Conformer encoder with factorized MHSA and FFN linear layers (``encoder: lowrank_conformer``)."""
import logging
from typing import Any, Dict, Optional

from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from torch import nn
from typeguard import typechecked

from espnet_lrsms.asr.lowrank_blocks import factorize_block_stack, signature_with
from espnet_lrsms.asr.unit_dropout import apply_unit_dropout
from espnet_lrsms.nets.espnet_names import BLOCK_STACKS, CONV_MODULE, ENCODER_BLOCK_MODULES

logger = logging.getLogger(__name__)

CONV_NORMS = ("batch_norm", "group_norm")


class LowRankConformerEncoder(ConformerEncoder):
    """``ConformerEncoder`` whose attention and feed-forward linears are ``U·Vᵀ`` products.

    Every ``ConformerEncoder`` argument keeps its meaning. Added options:

    * ``lowrank``: the rank schedule (:mod:`espnet_lrsms.lowrank.schedule`). ``mhsa`` factorizes
      ``self_attn.linear_q/k/v/out`` (and ``linear_pos``), ``ffn`` the ``w_1``/``w_2`` of
      ``feed_forward`` and ``feed_forward_macaron`` (convolutional FFNs stay dense). Everything
      else stays dense.
    * ``conv_norm``: ``batch_norm`` (ESPnet's, default) or ``group_norm``, i.e.
      ``nn.GroupNorm(conv_norm_groups, output_size)`` in each convolution module; ``conv_norm_groups``
      (default 32) must divide ``output_size``. Padded frames count in its statistics.
    * ``unit_dropout`` (``{blocks: [...] or "all", rate: r, modules: [mhsa, ffn, conv]}``): federated
      dropout, a random fraction r of the given blocks' units left out at each training step
      (:mod:`espnet_lrsms.asr.unit_dropout`); ``ffn_unit_dropout: {blocks, rate}`` is its old form, the
      FFN units only.

    Shapes are those of ``ConformerEncoder``: (B, T, input_size) → (B, T', output_size). Why group
    norm and unit dropout: docs/lowrank_models.md and docs/analysis.md.
    """

    @typechecked
    def __init__(
        self,
        input_size: int,
        *args,
        lowrank: Optional[Dict[str, Any]] = None,
        conv_norm: str = "batch_norm",
        conv_norm_groups: int = 32,
        unit_dropout: Optional[Dict[str, Any]] = None,
        ffn_unit_dropout: Optional[Dict[str, Any]] = None,
        **conformer_kwargs,
    ):
        if conv_norm not in CONV_NORMS:
            raise ValueError(f"encoder_conf.conv_norm: unknown {conv_norm!r}; choose one of {list(CONV_NORMS)}")
        if isinstance(conv_norm_groups, bool) or conv_norm_groups < 1:
            raise ValueError(f"encoder_conf.conv_norm_groups: expected a positive integer, got {conv_norm_groups!r}")
        super().__init__(input_size, *args, **conformer_kwargs)
        self.lowrank_plans = factorize_block_stack(
            self, BLOCK_STACKS["encoder"], lowrank, ENCODER_BLOCK_MODULES, "encoder_conf.lowrank"
        )
        self.conv_norm = conv_norm
        if conv_norm == "group_norm":
            self._use_group_norm(conv_norm_groups)
        self.unit_dropout_plan = apply_unit_dropout(self, unit_dropout, ffn_unit_dropout)

    __init__.__signature__ = signature_with(
        ConformerEncoder.__init__,
        {"lowrank": None, "conv_norm": "batch_norm", "conv_norm_groups": 32, "unit_dropout": None,
         "ffn_unit_dropout": None},
    )

    def _use_group_norm(self, groups: int) -> None:
        """Replace ``encoders[b].conv_module.norm`` (BatchNorm1d) by ``GroupNorm(groups, channels)``."""
        channels = self.output_size()
        if channels % groups != 0:
            divisors = [d for d in range(1, channels + 1) if channels % d == 0 and d <= 64]
            raise ValueError(
                f"encoder_conf.conv_norm_groups: {groups} does not divide the convolution module's "
                f"{channels} channels (output_size); choose one of {divisors}{' ...' if max(divisors) < channels else ''}"
            )
        replaced = 0
        for block in self.encoders:
            conv = getattr(block, CONV_MODULE, None)
            if conv is None:
                continue
            old = conv.norm
            conv.norm = nn.GroupNorm(groups, channels, eps=old.eps, device=old.weight.device, dtype=old.weight.dtype)
            replaced += 1
        if replaced == 0:
            logger.warning("encoder_conf.conv_norm: group_norm has no effect with use_cnn_module: false")
