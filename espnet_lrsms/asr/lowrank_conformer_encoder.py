"""ESPnet's Conformer encoder with factorized MHSA and FFN linear layers (``encoder: lowrank_conformer``)."""
from typing import Any, Dict, Optional

from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from typeguard import typechecked

from espnet_lrsms.asr.lowrank_blocks import factorize_block_stack, signature_with


class LowRankConformerEncoder(ConformerEncoder):
    """``ConformerEncoder`` whose attention and feed-forward linears are ``U·Vᵀ`` products.

    Every ``ConformerEncoder`` argument keeps its meaning; ``lowrank`` adds the rank schedule
    (see :mod:`espnet_lrsms.lowrank.schedule`). In block b (0-based, b < num_blocks):

    * ``mhsa``: ``self_attn.linear_q/k/v/out`` and, for relative-position attention,
      ``self_attn.linear_pos``;
    * ``ffn``: ``w_1`` and ``w_2`` of ``feed_forward`` and, with ``macaron_style``,
      ``feed_forward_macaron`` (with ``positionwise_layer_type: conv1d`` these are convolutions
      and stay dense; with ``conv1d-linear`` only the linear ``w_2`` is factorized).

    The input layer, the convolution module, the interCTC conditioning layer and the layer norms
    stay dense. Shapes are those of ``ConformerEncoder``: (B, T, input_size) → (B, T', output_size).
    """

    MODULE_TYPES = {"mhsa": ("self_attn",), "ffn": ("feed_forward", "feed_forward_macaron")}

    @typechecked
    def __init__(self, input_size: int, *args, lowrank: Optional[Dict[str, Any]] = None, **conformer_kwargs):
        super().__init__(input_size, *args, **conformer_kwargs)
        self.lowrank_plans = factorize_block_stack(
            self, "encoders", lowrank, self.MODULE_TYPES, "encoder_conf.lowrank"
        )

    __init__.__signature__ = signature_with(ConformerEncoder.__init__, {"lowrank": None})
