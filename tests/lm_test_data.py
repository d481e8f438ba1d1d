"""Test data for the LM tests: the demo corpus' transcripts (digit strings) and noisy n-best lists."""
import logging
import random
from pathlib import Path
from typing import Dict, List, Sequence

from conftest import REPO

DEMO = REPO / "demo" / "librispeech" / "LibriSpeech"
SPLITS = {"train_clean_100": "train-clean-100", "dev_clean": "dev-clean", "test_clean": "test-clean"}
# sound-alikes of the digit words (CMUdict homophones; SEVEN/SIX/... have none, so use near words)
NOISE = {
    "ONE": "WON", "TWO": "TOO", "FOUR": "FOR", "EIGHT": "ATE", "OH": "OWE",
    "ZERO": "HERO", "THREE": "TREE", "FIVE": "HIVE", "SIX": "SICKS", "SEVEN": "HEAVEN", "NINE": "MINE",
}


def demo_transcripts(split: str) -> Dict[str, str]:
    """utterance id -> words of one split of the bundled demo corpus."""
    out = {}
    for trans in sorted((DEMO / SPLITS[split]).glob("*/*/*.trans.txt")):
        for line in trans.read_text().splitlines():
            key, _, words = line.partition(" ")
            out[key] = words
    assert out, f"no demo transcripts for {split}"
    return out


def write_data_dir(root: Path, split: str) -> Path:
    """``<root>/<split>/{text,utt2spk}`` from the demo transcripts."""
    d = root / split
    d.mkdir(parents=True, exist_ok=True)
    texts = demo_transcripts(split)
    (d / "text").write_text("".join(f"{k} {v}\n" for k, v in texts.items()))
    (d / "utt2spk").write_text("".join(f"{k} {k.split('-')[0]}\n" for k in texts))
    return d


def noisy_nbest(refs: Dict[str, str], seed: int = 0, sound_alike: bool = True) -> Dict[str, List[tuple]]:
    """Per utterance three hypotheses (text, AM score): a corruption of the reference on top (one word
    replaced by a sound-alike non-digit, or with ``sound_alike=False`` by another digit), the reference
    second, the reference with a digit too many third. The first pass alone gets every utterance wrong."""
    rng = random.Random(seed)
    out = {}
    for key, text in sorted(refs.items()):
        words = text.split()
        first = list(words)
        i = rng.randrange(len(words))
        first[i] = NOISE[first[i]] if sound_alike else rng.choice(sorted(set(NOISE) - {first[i]}))
        third = list(words) + [rng.choice(sorted(NOISE))]
        out[key] = [(" ".join(first), -1.0), (text, -1.5), (" ".join(third), -2.0)]
    return out


def write_decode_dir(decode_dir: Path, nbest: Dict[str, List[tuple]]) -> Path:
    """ESPnet's layout: ``<decode_dir>/<n>best_recog/{text,score}`` (scores as ESPnet prints them)."""
    for n in range(1, max(len(h) for h in nbest.values()) + 1):
        sub = decode_dir / f"{n}best_recog"
        sub.mkdir(parents=True, exist_ok=True)
        keys = sorted(k for k in nbest if len(nbest[k]) >= n)
        (sub / "text").write_text("".join(f"{k} {nbest[k][n - 1][0]}\n" for k in keys))
        (sub / "score").write_text("".join(f"{k} tensor({nbest[k][n - 1][1]:.4f})\n" for k in keys))
    return decode_dir


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def train_lm(cmd: Sequence[str]) -> List[str]:
    """One run of espnet_lrsms.bin.lm_train (ESPnet's LMTask.main) in this process; returns its log."""
    from espnet_lrsms.bin.lm_train import main

    handler = _Collect()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        main([*cmd, "--use_matplotlib", "false"])
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return handler.messages


def write_word_lm_data(work: Path, sets: Dict[str, Sequence[Path]], vocabulary_texts: Sequence[Path]) -> Dict[str, object]:
    """Word-level LM data: a token list of the words of ``vocabulary_texts`` and, for each name of
    ``sets`` (Kaldi texts), ``<work>/stats/<name>/{text,text_shape.word}``. Returns the token list, the
    stats dir and ``args(train_set)``: ESPnet's data options for training on ``train_set``
    (validating on ``valid``)."""
    from espnet_lrsms.lm.text import write_lm_text
    from espnet_lrsms.text.tokens import write_text_shapes

    words = sorted({w for t in vocabulary_texts for line in Path(t).read_text().splitlines() for w in line.split()[1:]})
    token_list = work / "tokens.txt"
    token_list.write_text("\n".join(["<blank>", "<unk>", *words, "<sos/eos>"]) + "\n")
    stats = work / "stats"
    for name, texts in sets.items():
        write_text_shapes(write_lm_text(stats / name, texts), stats / name, None, token_list, token_type="word")

    def args(train_set: str) -> List[str]:
        return [
            "--ngpu", "0", "--seed", "0", "--token_type", "word", "--token_list", str(token_list),
            "--train_data_path_and_name_and_type", f"{stats / train_set / 'text'},text,text",
            "--valid_data_path_and_name_and_type", f"{stats / 'valid' / 'text'},text,text",
            "--train_shape_file", str(stats / train_set / "text_shape.word"),
            "--valid_shape_file", str(stats / "valid" / "text_shape.word"),
        ]

    return {"token_list": token_list, "stats": stats, "args": args}
