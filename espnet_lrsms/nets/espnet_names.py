"""ESPnet's module names in one map: which attribute of its blocks is MHSA, FFN, conv module or embedding.

Pure data, no ESPnet import, read by every layer: the low-rank encoder and decoder (which linears a
rank schedule factorizes), FFN unit dropout, checkpoint compression, the analysis tools (what a
state-dict key is) and the LM adapters (what module type a linear is). The names are those of
ESPnet 202511:

* ``ConformerEncoder.encoders[b]`` (``conformer.encoder_layer.EncoderLayer``): ``self_attn``,
  ``feed_forward``, ``feed_forward_macaron`` (None without macaron style), ``conv_module`` (None
  without it);
* ``TransformerDecoder.decoders[b]`` (``transformer.decoder_layer.DecoderLayer``): ``self_attn``,
  ``src_attn``, ``feed_forward``;
* ``MultiHeadedAttention``: ``linear_q/k/v/out`` (and ``linear_pos`` in relative-position attention);
  ``PositionwiseFeedForward``: ``w_1``, ``w_2`` (convolutions for ``positionwise_layer_type: conv1d``).
"""

# The children of an encoder / decoder block whose linear layers each module type of a rank schedule
# (``lowrank: {mhsa: ..., ffn: ...}``) factorizes, in the order they are planned.
ENCODER_BLOCK_MODULES = {"mhsa": ("self_attn",), "ffn": ("feed_forward", "feed_forward_macaron")}
DECODER_BLOCK_MODULES = {"mhsa": ("self_attn", "src_attn"), "ffn": ("feed_forward",)}

# The Conformer block's convolution module (it stays dense).
CONV_MODULE = "conv_module"

# Module type of every typed child of a block; any other child (norms, ...) is "other".
BLOCK_MODULE_TYPES = {
    child: module_type
    for modules in (ENCODER_BLOCK_MODULES, DECODER_BLOCK_MODULES)
    for module_type, children in modules.items()
    for child in children
}
BLOCK_MODULE_TYPES[CONV_MODULE] = "conv"

# The block stack of each sub-model of ``ESPnetASRModel``: ``<submodel>.<stack>.<b>.…``.
BLOCK_STACKS = {"encoder": "encoders", "decoder": "decoders"}

# The linear layers of a Transformer block (ESPnet's Transformer LM, the ASR decoder), by their own
# name, and their module type.
TRANSFORMER_LINEARS = {
    "linear_q": "mhsa",
    "linear_k": "mhsa",
    "linear_v": "mhsa",
    "linear_out": "mhsa",
    "w_1": "ffn",
    "w_2": "ffn",
}

# ESPnet's encoder / decoder choices that have a low-rank counterpart in this package (its registered name).
LOWRANK_COUNTERPARTS = {"encoder": {"conformer": "lowrank_conformer"}, "decoder": {"transformer": "lowrank_transformer"}}

# Weights whose first dimension is the vocabulary: the decoder's output layer, CTC's and the decoder's embedding.
VOCABULARY_WEIGHTS = ("decoder.output_layer.weight", "ctc.ctc_lo.weight", "decoder.embed.0.weight")
