"""Stage 6: WER/CER in ESPnet's layout (``ref.trn``, ``hyp.trn``, ``result.txt``) without SCTK.

``result.txt`` holds sclite's "SYSTEM SUMMARY PERCENTAGES by SPEAKER" table — one row per speaker, the
``Sum/Avg`` row that ESPnet's result scripts read, then Mean, S.D. and Median — computed from jiwer's
minimum-edit-distance alignments (the same counts sclite gives for ``-i rm``, as a test checks against
real sclite when it is installed).

Definitions, per set: N = reference words (or characters), C/S/D/I = correct, substituted, deleted,
inserted words over all utterances; Corr = C/N, Sub = S/N, Del = D/N, Ins = I/N, Err = (S+D+I)/N,
S.Err = share of utterances with at least one error; all in %.
"""
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import jiwer

from espnet_lrsms.fileio import read_kaldi_table, write_text_atomic


@dataclass
class Counts:
    sentences: int = 0
    words: int = 0
    correct: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    sentence_errors: int = 0

    def add(self, other: "Counts") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def percentages(self) -> Tuple[float, float, float, float, float, float]:
        n = max(self.words, 1)
        errors = self.substitutions + self.deletions + self.insertions
        return (
            100 * self.correct / n,
            100 * self.substitutions / n,
            100 * self.deletions / n,
            100 * self.insertions / n,
            100 * errors / n,
            100 * self.sentence_errors / max(self.sentences, 1),
        )


def units(text: str, unit: str) -> List[str]:
    """Words, or characters with ``<space>`` between words (ESPnet's CER convention)."""
    words = text.split()
    if unit == "word":
        return words
    if unit == "char":
        return ["<space>" if ch == " " else ch for ch in " ".join(words)]
    raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")


def utterance_counts(ref: List[str], hyp: List[str]) -> Counts:
    if not ref:
        return Counts(1, 0, 0, 0, 0, len(hyp), int(bool(hyp)))
    out = jiwer.process_words(" ".join(ref), " ".join(hyp) if hyp else "")
    return Counts(
        sentences=1,
        words=len(ref),
        correct=out.hits,
        substitutions=out.substitutions,
        deletions=out.deletions,
        insertions=out.insertions,
        sentence_errors=int(out.substitutions + out.deletions + out.insertions > 0),
    )


def read_text(path: Path) -> Dict[str, str]:
    return read_kaldi_table(path)


@dataclass
class Score:
    by_speaker: Dict[str, Counts] = field(default_factory=dict)
    total: Counts = field(default_factory=Counts)


def score_texts(ref: Dict[str, str], hyp: Dict[str, str], utt2spk: Dict[str, str], unit: str) -> Score:
    """Score every reference utterance; a missing hypothesis counts as empty (all deletions)."""
    score = Score()
    for uttid in sorted(ref):
        counts = utterance_counts(units(ref[uttid], unit), units(hyp.get(uttid, ""), unit))
        score.by_speaker.setdefault(utt2spk.get(uttid, uttid), Counts()).add(counts)
        score.total.add(counts)
    return score


def _row(label: str, snt: str, wrd: str, values) -> str:
    """One line of sclite's table: label (8 wide), counts, then the six percentages."""
    first, *rest = values
    return f"|{label}|{snt:>5}{wrd:>7} |{first:>5.1f}" + "".join(f"{v:>7.1f}" for v in rest) + " |"


def format_result(score: Score, name: str) -> str:
    """sclite's ``-o sum`` table (the layout ``sclite -i rm -o all`` starts its result.txt with)."""
    width = 64
    rule = "|--------+-------------+-----------------------------------------|"
    rows = [
        "SYSTEM SUMMARY PERCENTAGES by SPEAKER".center(width + 2),
        "",
        "," + "-" * width + ".",
        "|" + name.center(width) + "|",
        "|" + "-" * width + "|",
        "| SPKR   | # Snt # Wrd | Corr    Sub    Del    Ins    Err  S.Err |",
    ]
    for speaker, counts in sorted(score.by_speaker.items()):
        rows.append(rule)
        rows.append(_row(f" {speaker[:7]:<7}", str(counts.sentences), str(counts.words), counts.percentages()))
    rows.append("|" + "=" * width + "|")
    total = score.total
    rows.append(_row(" Sum/Avg", str(total.sentences), str(total.words), total.percentages()))
    rows.append("|" + "=" * width + "|")
    per = [c.percentages() for c in score.by_speaker.values()]
    snts = [c.sentences for c in score.by_speaker.values()]
    wrds = [c.words for c in score.by_speaker.values()]
    for label, fn in (("Mean", statistics.mean), ("S.D.", _sd), ("Median", statistics.median)):
        rows.append(_row(f"{label:^8}", f"{fn(snts):.1f}", f"{fn(wrds):.1f}", [fn(col) for col in zip(*per)]))
    rows.append("`" + "-" * width + "'")
    return "\n".join(rows) + "\n"


def _sd(values) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def write_trn(table: Dict[str, str], utt2spk: Dict[str, str], path: Path, unit: str) -> None:
    """sclite's trn format, as ESPnet writes it: ``TEXT (spk-uttid)``."""
    with open(path, "w", encoding="utf-8") as f:
        for uttid in sorted(table):
            f.write(f"{' '.join(units(table[uttid], unit))}\t({utt2spk.get(uttid, uttid)}-{uttid})\n")


def score_dir(ref_text: Path, hyp_text: Path, utt2spk_file: Path, out_dir: Path, unit: str) -> Counts:
    """Write ``ref.trn``, ``hyp.trn`` and ``result.txt`` to ``out_dir``; return the totals."""
    ref, hyp = read_text(ref_text), read_text(hyp_text)
    utt2spk = read_text(utt2spk_file) if utt2spk_file.is_file() else {}
    hyp = {k: v for k, v in hyp.items() if k in ref}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_trn(ref, utt2spk, out_dir / "ref.trn", unit)
    write_trn({k: hyp.get(k, "") for k in ref}, utt2spk, out_dir / "hyp.trn", unit)
    score = score_texts(ref, hyp, utt2spk, unit)
    write_text_atomic(out_dir / "result.txt", format_result(score, "hyp.trn"))
    return score.total
