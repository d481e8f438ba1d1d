"""Test data for the LM tests: the demo corpus' transcripts (digit strings) and noisy n-best lists."""
import random
from pathlib import Path
from typing import Dict, List

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
