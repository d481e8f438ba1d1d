"""LM rescoring of ASR n-best lists with LoRA-adapted Transformer LMs (arXiv 2401.10447)."""
