"""Text in ESPnet's layouts that the ASR and LM wings and the recipes share: Kaldi ``text`` files read one way,
the token types and how ESPnet's preprocessor counts tokens (``text_shape.<token_type>``), and the n-best decode
layout with its ``score_components`` (written by decoding, read by rescoring)."""
