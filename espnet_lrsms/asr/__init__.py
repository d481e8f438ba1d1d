"""ESPnet-facing ASR classes: the low-rank Conformer encoder and Transformer decoder, the ResNet-1D front end."""
