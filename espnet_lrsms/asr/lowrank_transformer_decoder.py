"""ESPnet's Transformer decoder with factorized MHSA and FFN linear layers (``decoder: lowrank_transformer``)."""
from typing import Any, Dict, Optional

from espnet2.asr.decoder.transformer_decoder import TransformerDecoder
from typeguard import typechecked

from espnet_lrsms.asr.lowrank_blocks import factorize_block_stack, signature_with
from espnet_lrsms.nets.espnet_names import BLOCK_STACKS, DECODER_BLOCK_MODULES


class LowRankTransformerDecoder(TransformerDecoder):
    """``TransformerDecoder`` whose attention and feed-forward linears are ``U·Vᵀ`` products.

    Every ``TransformerDecoder`` argument keeps its meaning; ``lowrank`` adds the rank schedule
    (see :mod:`espnet_lrsms.lowrank.schedule`). In block b (0-based, b < num_blocks):

    * ``mhsa``: ``linear_q/k/v/out`` of ``self_attn`` and ``src_attn``;
    * ``ffn``: ``feed_forward.w_1`` and ``feed_forward.w_2``.

    The embedding, the output layer and the layer norms stay dense. Scoring (``score``,
    ``batch_score``, used by ESPnet's beam search and batch beam search) is inherited unchanged.
    """

    @typechecked
    def __init__(
        self,
        vocab_size: int,
        encoder_output_size: int,
        *args,
        lowrank: Optional[Dict[str, Any]] = None,
        **transformer_kwargs,
    ):
        super().__init__(vocab_size, encoder_output_size, *args, **transformer_kwargs)
        self.lowrank_plans = factorize_block_stack(
            self, BLOCK_STACKS["decoder"], lowrank, DECODER_BLOCK_MODULES, "decoder_conf.lowrank"
        )

    __init__.__signature__ = signature_with(TransformerDecoder.__init__, {"lowrank": None})
