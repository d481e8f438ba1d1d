"""Sentence log-probabilities from a trained ESPnet LM: the base LM or a LoRA-adapted one."""
import logging
from pathlib import Path
from typing import Dict, List, Sequence, Union

import torch
from typeguard import typechecked

logger = logging.getLogger(__name__)


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

        from espnet_lrsms.lm.task import load_lm  # ESPnet's LM task: seconds to import

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
