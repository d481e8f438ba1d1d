"""Rescoring robustness to perturbed hypotheses: NPRR and its 1-best counterpart (arXiv 2401.10447).

For an n-best set with references, an LM, rescoring weights (λ, β) and a perturbation P (seeded, at
set rates; :mod:`espnet_lrsms.lm.perturb`):

* ``WER_clean``  — WER of the rescored 1-best of the n-best lists as decoded;
* ``WER_N``      — the same when P is applied to **every** hypothesis of every list (each perturbed
  independently; AM scores unchanged: the text the LM sees changes, the acoustic evidence does not);
* ``WER_1``      — the same when P is applied to the first-pass **1-best** hypothesis only;
* ``NPRR  = 100·(WER_N − WER_clean) / WER_clean``   (N-best perturbation-based rescoring robustness);
* ``1PRR  = 100·(WER_1 − WER_clean) / WER_clean``   (its 1-best counterpart).

Both are relative WER degradations in %: lower is more robust; undefined (None) when WER_clean = 0.
WERs count errors against the references, so a perturbed word that survives rescoring is an error.
The same numbers with λ = β = 0 (first pass only: the 1-best is kept, perturbed or not) show what the
perturbation does without an LM to push perturbed hypotheses down.
"""
import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from espnet_lrsms.lm.perturb import PerturbationConfig, PerturbationCounts, Perturber, Pronunciations
from espnet_lrsms.lm.text import lm_vocabulary
from espnet_lrsms.lm.rescore import SentenceScorer, chosen_words, corpus_wer, lm_scores, rescore
from espnet_lrsms.text.nbest import Hypothesis, NBest, read_references


def perturb_nbest(nbest: NBest, perturber: Perturber, only_first: bool = False) -> Tuple[NBest, PerturbationCounts]:
    """A copy of ``nbest`` with the hypotheses' words perturbed (all of them, or each list's first only)."""
    out: NBest = {}
    total = PerturbationCounts()
    for key, hyps in nbest.items():
        new = []
        for n, h in enumerate(hyps, 1):
            if only_first and n > 1:
                new.append(h)
                continue
            words, counts = perturber.perturb(h.words, f"{key}/{n}")
            total.add(counts)
            new.append(Hypothesis(" ".join(words), h.score, h.scores, h.weights))
        out[key] = new
    return out, total


def relative_degradation(perturbed: float, clean: float) -> Optional[float]:
    return None if clean == 0 else 100.0 * (perturbed - clean) / clean


@dataclass(frozen=True)
class Robustness:
    lm_weight: float
    length_bonus: float
    wer_clean: float
    wer_nbest_perturbed: float
    wer_1best_perturbed: float

    @property
    def nprr(self) -> Optional[float]:
        return relative_degradation(self.wer_nbest_perturbed, self.wer_clean)

    @property
    def one_best_prr(self) -> Optional[float]:
        return relative_degradation(self.wer_1best_perturbed, self.wer_clean)


def _rescored_wer(nbest, lm, refs, lm_weight, length_bonus, am_components) -> float:
    return corpus_wer(refs, chosen_words(nbest, rescore(nbest, lm, lm_weight, length_bonus, am_components)))


def evaluate_robustness(
    nbest: NBest,
    refs: Mapping[str, Sequence[str]],
    scorer: SentenceScorer,
    perturber: Perturber,
    lm_weight: float,
    length_bonus: float = 0.0,
    am_components: Optional[List[str]] = None,
) -> Dict[str, object]:
    """NPRR and 1PRR of rescoring with ``scorer`` at (λ, β), and of the first pass alone (λ = β = 0).

    Returns ``{"lm": Robustness, "first_pass": Robustness, "nbest_counts": ..., "1best_counts": ...}``.
    """
    refs = {k: list(v) for k, v in refs.items()}
    nbest = {k: v for k, v in nbest.items() if k in refs}
    missing = sorted(set(refs) - set(nbest))
    if missing:
        raise KeyError(f"{len(missing)} reference utterances have no n-best list, e.g. {missing[:3]}")
    all_perturbed, nbest_counts = perturb_nbest(nbest, perturber)
    first_perturbed, first_counts = perturb_nbest(nbest, perturber, only_first=True)
    results = {}
    for name, (w, b) in (("lm", (lm_weight, length_bonus)), ("first_pass", (0.0, 0.0))):
        wers = []
        for lists in (nbest, all_perturbed, first_perturbed):
            lm = lm_scores(lists, scorer) if w else {k: [0.0] * len(h) for k, h in lists.items()}
            wers.append(_rescored_wer(lists, lm, refs, w, b, am_components))
        results[name] = Robustness(w, b, *wers)
    results["nbest_counts"] = nbest_counts
    results["1best_counts"] = first_counts
    return results


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:+.1f} %"


def add_perturbation_arguments(parser: argparse.ArgumentParser) -> None:
    from espnet2.utils.types import str2bool

    parser.add_argument("--substitution_rate", type=float, default=0.3, help="homophone substitutions")
    parser.add_argument("--deletion_rate", type=float, default=0.0)
    parser.add_argument("--insertion_rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--near_homophones", type=str2bool, default=False,
        help="a word without a homophone may be replaced by a word one phone away (default: homophones only)",
    )
    parser.add_argument(
        "--substitution_vocabulary", default="lm",
        help="the only words substitutes may be: 'lm' (the LM's vocabulary: its word token list, or the words "
        "of its base LM's training text), a Kaldi text, or 'none' (all of CMUdict)",
    )


def substitution_vocabulary(spec: str, lm_train_config: Optional[Path]) -> Tuple[Optional[List[str]], str]:
    """The allowed substitutes of ``--substitution_vocabulary`` and a description of them."""
    if spec == "none":
        return None, "all of CMUdict"
    if spec == "lm":
        if lm_train_config is None:
            raise ValueError("--substitution_vocabulary lm needs the LM's config")
        words, origin = lm_vocabulary(lm_train_config)
        return words, f"{len(words)} words of {origin}"
    words = sorted({w for ws in read_references(Path(spec)).values() for w in ws})
    return words, f"{len(words)} words of {spec}"


def robustness_report(
    nbest: NBest,
    refs,
    scorer: SentenceScorer,
    args: argparse.Namespace,
    lm_weight: float,
    length_bonus: float,
    am_components: Optional[List[str]] = None,
    pronunciations: Optional[Pronunciations] = None,
) -> Tuple[str, dict]:
    """The printed table and a JSON-ready dict of NPRR / 1-best PRR (perturbation options from ``args``)."""
    config = PerturbationConfig(
        args.substitution_rate, args.deletion_rate, args.insertion_rate, args.seed, near_homophones=args.near_homophones
    )
    vocab = sorted({w for hyps in nbest.values() for h in hyps for w in h.words})
    allowed, allowed_origin = substitution_vocabulary(args.substitution_vocabulary, getattr(args, "lm_train_config", None))
    perturber = Perturber(config, pronunciations or Pronunciations.shared(), insertion_vocabulary=vocab, substitution_vocabulary=allowed)
    result = evaluate_robustness(nbest, refs, scorer, perturber, lm_weight, length_bonus, am_components)
    n = result["nbest_counts"]
    lines = [
        f"λ = {lm_weight:g}, β = {length_bonus:g}; perturbation: seed {config.seed}, substitution "
        f"{config.substitution_rate:g} ({'homophones, else phone-distance-1 words' if config.near_homophones else 'homophones'} "
        f"from {allowed_origin}), deletion {config.deletion_rate:g}, "
        f"insertion {config.insertion_rate:g}; over all hypotheses: {n.words} words, {n.substituted} substituted "
        f"({n.unsubstitutable} drawn without a candidate), {n.deleted} deleted, {n.inserted} inserted",
        f"{'':18s} {'WER clean':>10s} {'WER N-pert':>11s} {'WER 1-pert':>11s} {'NPRR':>9s} {'1-best PRR':>11s}",
    ]
    for name, label in (("lm", "rescored with LM"), ("first_pass", "first pass only")):
        r = result[name]
        lines.append(
            f"{label:18s} {r.wer_clean:9.2f}% {r.wer_nbest_perturbed:10.2f}% {r.wer_1best_perturbed:10.2f}% "
            f"{_fmt(r.nprr):>9s} {_fmt(r.one_best_prr):>11s}"
        )
    r = result["lm"]
    lines.append(f"NPRR = {_fmt(r.nprr)}   1-best PRR = {_fmt(r.one_best_prr)}")
    payload = {
        name: dict(vars(result[name]), nprr=result[name].nprr, one_best_prr=result[name].one_best_prr)
        for name in ("lm", "first_pass")
    }
    payload["perturbation"] = dict(vars(config), substitution_vocabulary=allowed_origin)
    payload["perturbed_nbest_counts"] = vars(n)
    return "\n".join(lines), payload
