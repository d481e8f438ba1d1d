"""N-best rescoring: ``score(h) = AM(h) + λ·log P_LM(h) + β·|h|``, λ (and β) tuned for the lowest WER on a dev set.

``AM(h)`` is the first pass' total score (decoder + CTC + length bonus, as the beam search weighted
them), or a weighted sum of chosen components of it; ``|h|`` is the number of words. The hypothesis
with the highest score is the rescored 1-best; ties keep the first-pass order.
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from espnet_lrsms.fileio import replaced_on_success
from espnet_lrsms.scoring.sclite import align
from espnet_lrsms.text.nbest import Hypothesis, NBest

SentenceScorer = Callable[[Sequence[str]], List[float]]  # sentences -> log P_LM


def word_errors(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Substitutions + deletions + insertions of ``hyp`` against ``ref``, counted as the scoring stage
    counts them (sclite's alignment, so tuning optimises the WER that RESULTS.md reports)."""
    counts, _ = align(ref, hyp)
    return counts.substitutions + counts.deletions + counts.insertions


def corpus_wer(refs: Mapping[str, Sequence[str]], hyps: Mapping[str, Sequence[str]]) -> float:
    """WER in % over the utterances of ``refs`` (a missing hypothesis counts as empty)."""
    words = sum(len(r) for r in refs.values())
    errors = sum(word_errors(r, hyps.get(k, [])) for k, r in refs.items())
    return 100.0 * errors / max(words, 1)


def lm_scores(nbest: NBest, scorer: SentenceScorer) -> Dict[str, List[float]]:
    """log P_LM of every hypothesis, in n-best order."""
    keys = sorted(nbest)
    flat = scorer([h.text for k in keys for h in nbest[k]])
    out, i = {}, 0
    for k in keys:
        out[k] = flat[i : i + len(nbest[k])]
        i += len(nbest[k])
    return out


def rescore(
    nbest: NBest,
    lm: Mapping[str, Sequence[float]],
    lm_weight: float,
    length_bonus: float = 0.0,
    am_components: Optional[List[str]] = None,
) -> Dict[str, int]:
    """Index of the best hypothesis of each utterance under the combined score."""
    best = {}
    for key, hyps in nbest.items():
        combined = [
            h.am_score(am_components) + lm_weight * lm[key][i] + length_bonus * len(h.words) for i, h in enumerate(hyps)
        ]
        best[key] = max(range(len(hyps)), key=lambda i: (combined[i], -i))
    return best


def chosen_words(nbest: NBest, choice: Mapping[str, int]) -> Dict[str, List[str]]:
    return {k: nbest[k][i].words for k, i in choice.items()}


@dataclass(frozen=True)
class Tuning:
    lm_weight: float
    length_bonus: float
    wer: float
    table: Tuple[Tuple[float, float, float], ...]  # (λ, β, WER) for every grid point


def tune_weights(
    nbest: NBest,
    lm: Mapping[str, Sequence[float]],
    refs: Mapping[str, Sequence[str]],
    lm_weights: Sequence[float],
    length_bonuses: Sequence[float] = (0.0,),
    am_components: Optional[List[str]] = None,
) -> Tuning:
    """Grid search of (λ, β) for the lowest WER on ``refs``; ties go to the smallest λ, then the smallest |β|."""
    missing = sorted(set(refs) - set(nbest))
    if missing:
        raise KeyError(f"{len(missing)} reference utterances have no n-best list, e.g. {missing[:3]}")
    errors = {k: [word_errors(ref, h.words) for h in nbest[k]] for k, ref in refs.items()}  # once per hypothesis
    words = max(sum(len(ref) for ref in refs.values()), 1)
    table = []
    for w in lm_weights:
        for b in length_bonuses:
            choice = rescore(nbest, lm, w, b, am_components)
            table.append((float(w), float(b), 100.0 * sum(errors[k][choice[k]] for k in refs) / words))
    w, b, wer = min(table, key=lambda row: (round(row[2], 9), row[0], abs(row[1])))
    return Tuning(w, b, wer, tuple(table))


def parse_grid(spec: str) -> List[float]:
    """``"0:1.5:0.1"`` (start:stop:step, stop included) or ``"0,0.3,0.5"``."""
    if ":" in spec:
        start, stop, step = (float(x) for x in spec.split(":"))
        if step <= 0 or stop < start:
            raise ValueError(f"grid {spec!r}: need start <= stop and step > 0")
        count = int(round((stop - start) / step)) + 1
        return [round(start + i * step, 10) for i in range(count)]
    return [float(x) for x in spec.split(",") if x.strip()]


def write_rescored(
    output_dir,
    nbest: NBest,
    lm: Mapping[str, Sequence[float]],
    lm_weight: float,
    length_bonus: float = 0.0,
    am_components: Optional[List[str]] = None,
    info: Optional[dict] = None,
) -> Path:
    """A decode directory holding the rescored 1-best (``1best_recog/{text,score,rescore}``) for the
    scorer of stage 13, plus ``rescore.json`` (weights and where they came from). Written to
    ``<output_dir>.tmp`` and renamed."""
    output_dir = Path(output_dir)
    with replaced_on_success(output_dir) as tmp:
        _write_rescored(tmp, nbest, lm, lm_weight, length_bonus, am_components, info)
    return output_dir


def _write_rescored(tmp: Path, nbest, lm, lm_weight, length_bonus, am_components, info) -> None:
    (tmp / "1best_recog").mkdir(parents=True)
    choice = rescore(nbest, lm, lm_weight, length_bonus, am_components)
    text, score, detail = [], [], []
    for key in sorted(nbest):
        i = choice[key]
        h: Hypothesis = nbest[key][i]
        am = h.am_score(am_components)
        total = am + lm_weight * lm[key][i] + length_bonus * len(h.words)
        text.append(f"{key} {h.text}\n")
        score.append(f"{key} {total}\n")
        detail.append(f"{key} " + json.dumps({"rank": i + 1, "am": am, "lm": lm[key][i], "words": len(h.words)}) + "\n")
    (tmp / "1best_recog" / "text").write_text("".join(text), encoding="utf-8")
    (tmp / "1best_recog" / "score").write_text("".join(score), encoding="utf-8")
    (tmp / "1best_recog" / "rescore").write_text("".join(detail), encoding="utf-8")
    meta = dict(info or {}, lm_weight=lm_weight, length_bonus=length_bonus, am_components=am_components)
    (tmp / "rescore.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
