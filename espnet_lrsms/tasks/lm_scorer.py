"""Sentence log-probabilities from a trained ESPnet LM: the base LM or a LoRA-adapted one."""
import argparse
import logging
from pathlib import Path
from typing import Dict, List, Sequence, Union

import torch
import yaml
from typeguard import typechecked

logger = logging.getLogger(__name__)


def load_lm(lm_train_config: Union[str, Path], lm_file: Union[str, Path], device: str = "cpu"):
    """Build the LM that ``lm_train_config`` (an ESPnet LM ``config.yaml``) describes and load ``lm_file``.

    A config with ``lora_conf`` is rebuilt with its adapters at the ranks the checkpoint holds (a warm-up
    run truncates them), so the state dict loads strictly: every tensor must match.
    Returns ``(model, args)``, the model in eval mode.
    """
    from espnet2.tasks.lm import LMTask

    from espnet_lrsms.fileio import load_weights_only
    from espnet_lrsms.lm.adapters import ranks_in_state_dict
    from espnet_lrsms.lm.lora_config import LoRAConfig
    from espnet_lrsms.lowrank import load_exact_state_dict
    from espnet_lrsms.tasks.lm import LoRALMTask

    with open(lm_train_config, encoding="utf-8") as f:
        args = argparse.Namespace(**yaml.safe_load(f))
    state = load_weights_only(lm_file)
    lora_conf = getattr(args, "lora_conf", None) or {}
    if lora_conf:
        model = LoRALMTask.build_adapted_model(
            args, LoRAConfig.from_dict(lora_conf), base_lm_file=None, rank_overrides=ranks_in_state_dict(state), loading=True
        )
    else:
        model = LMTask.build_model(args)
    load_exact_state_dict(model, state, f"{lm_file} (config {lm_train_config})")
    return model.to(device).eval(), args


class LMScorer:
    """``log P(sentence)`` (natural log, the sum over its tokens and the end of sentence) under an ESPnet LM.

    Sentences are tokenized as the LM was trained (``token_type``, ``bpemodel``, ``token_list`` of its
    config). Scores are cached by sentence.
    """

    @typechecked
    def __init__(
        self,
        lm_train_config: Union[str, Path],
        lm_file: Union[str, Path],
        device: str = "cpu",
        batch_size: int = 64,
    ):
        from espnet2.text.build_tokenizer import build_tokenizer
        from espnet2.text.token_id_converter import TokenIDConverter

        self.model, args = load_lm(lm_train_config, lm_file, device)
        self.device = device
        self.batch_size = batch_size
        bpemodel = getattr(args, "bpemodel", None)
        if args.token_type == "bpe" and (bpemodel is None or not Path(bpemodel).is_file()):
            raise FileNotFoundError(
                f"{lm_train_config}: bpemodel {bpemodel!r} not found (paths in an ESPnet config are relative to "
                "the directory training ran in: run from there)"
            )
        self.tokenizer = build_tokenizer(token_type=args.token_type, bpemodel=bpemodel)
        self.converter = TokenIDConverter(token_list=args.token_list)
        self.cache: Dict[str, float] = {}

    def token_ids(self, sentence: str) -> List[int]:
        return self.converter.tokens2ids(self.tokenizer.text2tokens(sentence))

    @torch.no_grad()
    def __call__(self, sentences: Sequence[str]) -> List[float]:
        todo = sorted({s for s in sentences if s not in self.cache})
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            ids = [self.token_ids(s) for s in batch]
            lengths = torch.tensor([len(x) for x in ids], dtype=torch.long)
            text = torch.zeros(len(ids), max(1, int(lengths.max())), dtype=torch.long)
            for i, x in enumerate(ids):
                text[i, : len(x)] = torch.tensor(x, dtype=torch.long)
            nll, _ = self.model.nll(text.to(self.device), lengths.to(self.device))  # (B, L + 1), padding at 0
            for sentence, value in zip(batch, nll.sum(dim=1).tolist()):
                self.cache[sentence] = -value
        return [self.cache[s] for s in sentences]
