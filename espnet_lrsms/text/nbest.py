"""N-best lists in ESPnet's decode layout: ``<decode_dir>/<n>best_recog/{text,score[,score_components]}``.

``score`` holds the beam search's total score of each hypothesis (ESPnet writes ``tensor(-1.93)``
or a plain number); ``score_components`` holds, per hypothesis, a JSON object
``{"scores": {scorer: raw score}, "weights": {scorer: weight}}`` with ``score = Σ weights[k]·scores[k]``:
written by :func:`write_components` (ASR and AVSR decoding) and read by :func:`parse_components` (LM rescoring).
"""
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from espnet_lrsms.fileio import read_kaldi_table, replaced_on_success, write_text_atomic

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan")
_NBEST_DIR = re.compile(r"^(\d+)best_recog$")
COMPONENTS_FILE = "score_components"


@dataclass(frozen=True)
class Hypothesis:
    """One entry of an n-best list."""

    text: str
    score: float  # the first pass' total score (AM: decoder, CTC, length bonus, ... weighted)
    scores: Mapping[str, float] = field(default_factory=dict)  # raw per-scorer scores, if decoding wrote them
    weights: Mapping[str, float] = field(default_factory=dict)  # their weights in `score`

    @property
    def words(self) -> List[str]:
        return self.text.split()

    def am_score(self, components: Optional[List[str]] = None) -> float:
        """``score``, or ``Σ weights[k]·scores[k]`` over the named components only."""
        if not components:
            return self.score
        missing = [k for k in components if k not in self.scores]
        if missing:
            raise KeyError(f"no score component(s) {missing} for {self.text!r} (has {sorted(self.scores)})")
        return sum(self.weights.get(k, 1.0) * self.scores[k] for k in components)


NBest = Dict[str, List[Hypothesis]]  # utterance id -> hypotheses, first-pass rank order (1-best first)


def parse_score(value: str, where: str) -> float:
    """The number in ``value`` (``tensor(-1.93)`` or ``-1.93``); NaN and ±inf fail: an infinite score
    would always win (or always lose) the rescoring, whatever the LM says."""
    match = _NUMBER.search(value)
    if not match:
        raise ValueError(f"{where}: cannot read a score from {value!r}")
    score = float(match.group(0))
    if math.isnan(score):
        raise ValueError(f"{where}: the score {value!r} is not a number")
    if math.isinf(score):
        raise ValueError(f"{where}: the score {value!r} is not finite")
    return score


def parse_components(value: str, where: str) -> Dict[str, Dict[str, float]]:
    """One ``score_components`` entry: ``{"scores": {scorer: score}, "weights": {scorer: weight}}``, every
    value a finite number (Python's JSON reader takes ``NaN`` and ``Infinity``; they are no scores)."""
    try:
        entry = json.loads(value)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not JSON ({error.msg})") from None
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), dict) for k in ("scores", "weights")):
        raise ValueError(f"{where}: not an object with 'scores' and 'weights': {value[:200]!r}")
    for part in ("scores", "weights"):
        for name, number in entry[part].items():
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                raise ValueError(f"{where}: {part}.{name} is {json.dumps(number)}, not a finite number")
    return {part: {k: float(v) for k, v in entry[part].items()} for part in ("scores", "weights")}


def format_components(scores: Mapping[str, float], weights: Mapping[str, float]) -> str:
    """One ``score_components`` entry, as :func:`parse_components` reads it: the scorers' raw scores and the
    weights of those scorers (a weight without a score is left out)."""
    return json.dumps({"scores": {k: float(v) for k, v in scores.items()},
                       "weights": {k: float(weights[k]) for k in scores if k in weights}})


def write_components(nbest_dir, entries: Sequence[Tuple[str, Mapping[str, float], Mapping[str, float]]]) -> Path:
    """Write ``<nbest_dir>/score_components`` (through a temporary file): a line ``<key> <entry>`` per
    ``(key, scores, weights)`` of ``entries``, in their order (that of the ``score`` file beside it)."""
    path = Path(nbest_dir) / COMPONENTS_FILE
    return write_text_atomic(path, "".join(f"{key} {format_components(s, w)}\n" for key, s, w in entries))


def _same_keys(table: Mapping[str, str], path: Path, other: Mapping[str, str], other_path: Path) -> None:
    """Every key of ``other`` has a line in ``table`` (a missing line would drop that hypothesis silently)."""
    for key in other:
        if key not in table:
            raise ValueError(f"{path}: no line for {key}, which {other_path} has")


def _read_table(path: Path) -> Dict[str, str]:
    return read_kaldi_table(path)


def nbest_depth(decode_dir: Path) -> int:
    """N of the ``<n>best_recog`` directories ``1 … N`` present."""
    found = {int(m.group(1)) for p in Path(decode_dir).iterdir() if (m := _NBEST_DIR.match(p.name)) and p.is_dir()}
    n = 0
    while n + 1 in found:
        n += 1
    return n


def read_nbest(decode_dir) -> NBest:
    """All hypotheses of a decode directory. An utterance with fewer than N hypotheses (ESPnet writes an
    n-th entry only when the beam had one) keeps the ones it has."""
    decode_dir = Path(decode_dir)
    depth = nbest_depth(decode_dir) if decode_dir.is_dir() else 0
    if depth == 0:
        raise FileNotFoundError(f"{decode_dir}: no 1best_recog/ (not a decode directory, or decoding has not run)")
    nbest: NBest = {}
    for n in range(1, depth + 1):
        sub = decode_dir / f"{n}best_recog"
        for name in ("text", "score"):
            if not (sub / name).is_file():
                raise FileNotFoundError(f"{sub / name}: missing (ESPnet's decoding writes text and score)")
        texts, scores = _read_table(sub / "text"), _read_table(sub / "score")
        _same_keys(texts, sub / "text", scores, sub / "score")
        _same_keys(scores, sub / "score", texts, sub / "text")
        components = {}
        if (sub / COMPONENTS_FILE).is_file():  # written for every hypothesis of the score file, or not at all
            components = _read_table(sub / COMPONENTS_FILE)
            _same_keys(components, sub / COMPONENTS_FILE, scores, sub / "score")
            _same_keys(scores, sub / "score", components, sub / COMPONENTS_FILE)
        for key, score in scores.items():
            comp = parse_components(components[key], f"{sub / COMPONENTS_FILE}: {key}") if components else {}
            hyp = Hypothesis(
                text=" ".join(texts[key].split()),
                score=parse_score(score, f"{sub / 'score'}: {key}"),
                scores=comp.get("scores", {}),
                weights=comp.get("weights", {}),
            )
            if n > 1 and key not in nbest:
                raise ValueError(f"{sub}: {key} has a {n}-th hypothesis but no 1-best")
            nbest.setdefault(key, []).append(hyp)
    return nbest


def read_references(text_file) -> Dict[str, List[str]]:
    """A Kaldi ``text`` file as utterance id -> words."""
    return {k: v.split() for k, v in _read_table(Path(text_file)).items()}


def write_nbest(decode_dir, nbest: NBest) -> Path:
    """Write ``nbest`` as ``<decode_dir>/<n>best_recog/{text,score}`` (to a temporary name, then renamed)."""
    decode_dir = Path(decode_dir)
    depth = max((len(h) for h in nbest.values()), default=0)
    with replaced_on_success(decode_dir) as tmp:
        for n in range(1, depth + 1):
            sub = tmp / f"{n}best_recog"
            sub.mkdir(parents=True)
            keys = sorted(k for k, hyps in nbest.items() if len(hyps) >= n)
            (sub / "text").write_text("".join(f"{k} {nbest[k][n - 1].text}\n" for k in keys), encoding="utf-8")
            (sub / "score").write_text("".join(f"{k} {nbest[k][n - 1].score}\n" for k in keys), encoding="utf-8")
    return decode_dir
