"""Stage 13: WER/CER/TER in ESPnet's layout (``ref.trn``, ``hyp.trn``, ``result.txt``) without SCTK.

``result.txt`` is what ``sclite -i rm -o all stdout`` writes and ESPnet keeps: the "SYSTEM SUMMARY
PERCENTAGES by SPEAKER" table — one row per speaker, the ``Sum/Avg`` row that ESPnet's result scripts
read, then Mean, S.D. and Median — followed by the alignment of every utterance (``id:``, ``Scores:``,
``REF:``, ``HYP:``, ``Eval:``; correct units in lower case, errors in upper case, ``*`` where a unit is
missing). The alignment is sclite's (case-insensitive, weighted edit distance, sclite's tie-breaking): a
test compares the whole file with real sclite's output when SCTK is installed.

Units, as ESPnet's scoring stage makes them: words (WER), characters with ``<space>`` between words (CER),
SentencePiece tokens (TER, needs the recipe's ``bpe.model``). Before splitting, ESPnet's text cleaner
(``--cleaner`` on references, ``--hyp_cleaner`` on hypotheses) is applied and the non-linguistic symbols
of ``--nlsyms_txt`` are removed from both.

Definitions, per set: N = reference units, C/S/D/I = correct, substituted, deleted, inserted units over
all utterances; Corr = C/N, Sub = S/N, Del = D/N, Ins = I/N, Err = (S+D+I)/N, S.Err = share of
utterances with at least one error; all in %.
"""
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from espnet_lrsms.fileio import read_kaldi_table, write_text_atomic

METRIC_UNITS = {"wer": "word", "cer": "char", "ter": "token"}


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


@dataclass(frozen=True)
class ScoringText:
    """How reference and hypothesis lines become units (ESPnet's scoring options)."""

    nlsyms: Tuple[str, ...] = ()  # removed from both sides (--nlsyms_txt)
    cleaner: Optional[str] = None  # espnet2.text.cleaner on references (--cleaner), e.g. tacotron
    hyp_cleaner: Optional[str] = None  # the same on hypotheses (--hyp_cleaner)
    bpemodel: Optional[Path] = None  # SentencePiece model for TER

    @classmethod
    def from_files(cls, nlsyms_txt: Optional[Path] = None, cleaner: Optional[str] = None,
                   hyp_cleaner: Optional[str] = None, bpemodel: Optional[Path] = None) -> "ScoringText":
        nlsyms: Tuple[str, ...] = ()
        if nlsyms_txt is not None:
            if not nlsyms_txt.is_file():
                raise FileNotFoundError(f"--nlsyms_txt {nlsyms_txt}: no such file")
            nlsyms = tuple(line.strip() for line in nlsyms_txt.read_text(encoding="utf-8").splitlines() if line.strip())
        if bpemodel is not None and not bpemodel.is_file():
            raise FileNotFoundError(f"--bpemodel {bpemodel}: no such file (TER needs the recipe's bpe.model)")
        none = (None, "", "none")
        return cls(nlsyms, None if cleaner in none else cleaner, None if hyp_cleaner in none else hyp_cleaner, bpemodel)

    def splitter(self, metric: str, side: str) -> Callable[[str], List[str]]:
        """``text -> units`` for ``metric`` (wer, cer, ter) on the ``side`` ("ref" or "hyp")."""
        if metric not in METRIC_UNITS:
            raise ValueError(f"metric must be one of {sorted(METRIC_UNITS)}, got {metric!r}")
        clean = _text_cleaner(self.cleaner if side == "ref" else self.hyp_cleaner)
        if metric == "ter":
            if self.bpemodel is None:
                raise ValueError("TER needs the SentencePiece model (--bpemodel)")
            import sentencepiece

            model = sentencepiece.SentencePieceProcessor(model_file=str(self.bpemodel))
            return lambda text: model.encode(" ".join(self._strip(clean(text)).split()), out_type=str)
        unit = METRIC_UNITS[metric]
        return lambda text: units(self._strip(clean(text)), unit)

    def _strip(self, text: str) -> str:
        for symbol in self.nlsyms:
            text = text.replace(symbol, " ")
        return text


def _text_cleaner(name: Optional[str]) -> Callable[[str], str]:
    if name is None:
        return lambda text: text
    from espnet2.text.cleaner import TextCleaner

    return TextCleaner(name)


def align(ref: Sequence[str], hyp: Sequence[str]) -> Tuple["Counts", List[Tuple[Optional[str], Optional[str], str]]]:
    """Counts of one utterance and its alignment as (ref unit, hyp unit, eval) columns, as sclite aligns:
    case-insensitive, costs 0 (correct), 4 (substitution), 3 (deletion or insertion), ties broken towards
    a match or substitution, then an insertion, walking back from the end. Eval is "" for a correct unit,
    else S, D or I; the missing side of a deletion or insertion is ``None``."""
    r_key, h_key = [u.lower() for u in ref], [u.lower() for u in hyp]
    n, m = len(ref), len(hyp)
    cost = [[3 * j for j in range(m + 1)]]
    for i in range(1, n + 1):
        row, above, r = [3 * i], cost[i - 1], r_key[i - 1]
        for j in range(1, m + 1):
            row.append(min(above[j - 1] + (0 if r == h_key[j - 1] else 4), above[j] + 3, row[j - 1] + 3))
        cost.append(row)
    columns: List[Tuple[Optional[str], Optional[str], str]] = []
    i, j = n, m
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (0 if r_key[i - 1] == h_key[j - 1] else 4):
            columns.append((ref[i - 1], hyp[j - 1], "" if r_key[i - 1] == h_key[j - 1] else "S"))
            i, j = i - 1, j - 1
        elif j and cost[i][j] == cost[i][j - 1] + 3:
            columns.append((None, hyp[j - 1], "I"))
            j -= 1
        else:
            columns.append((ref[i - 1], None, "D"))
            i -= 1
    columns.reverse()
    ops = [op for _, _, op in columns]
    subs, dels, ins = ops.count("S"), ops.count("D"), ops.count("I")
    counts = Counts(1, n, ops.count(""), subs, dels, ins, int(subs + dels + ins > 0))
    return counts, columns


def alignment_lines(columns: List[Tuple[Optional[str], Optional[str], str]]) -> List[str]:
    """sclite's ``REF:``/``HYP:``/``Eval:`` lines: each column as wide as its longer unit; correct units in
    lower case, errors in upper case, ``*`` for the missing side."""
    ref_line, hyp_line, eval_line = [], [], []
    for r, h, op in columns:
        width = max(len(r or ""), len(h or ""), 1)
        if op:
            r = r.upper() if r is not None else "*" * width
            h = h.upper() if h is not None else "*" * width
        else:
            r, h = r.lower(), h.lower()
        ref_line.append(r.ljust(width) + " ")
        hyp_line.append(h.ljust(width) + " ")
        eval_line.append(op.ljust(width) + " ")
    return ["REF:  " + "".join(ref_line), "HYP:  " + "".join(hyp_line), "Eval: " + "".join(eval_line)]


def read_text(path: Path) -> Dict[str, str]:
    return read_kaldi_table(path)


@dataclass
class Utterance:
    uttid: str
    speaker: str
    counts: Counts
    columns: List[Tuple[Optional[str], Optional[str], str]]


@dataclass
class Score:
    by_speaker: Dict[str, Counts] = field(default_factory=dict)
    total: Counts = field(default_factory=Counts)
    utterances: List[Utterance] = field(default_factory=list)


def score_texts(ref: Dict[str, List[str]], hyp: Dict[str, List[str]], utt2spk: Dict[str, str]) -> Score:
    """Score every reference utterance (units already split); a missing hypothesis counts as empty."""
    score = Score()
    for uttid in sorted(ref):
        speaker = utt2spk.get(uttid, uttid).lower()  # sclite prints speaker ids in lower case
        counts, columns = align(ref[uttid], hyp.get(uttid, []))
        score.by_speaker.setdefault(speaker, Counts()).add(counts)
        score.total.add(counts)
        score.utterances.append(Utterance(uttid, speaker, counts, columns))
    return score


def _table(title_name: str, score: Score, raw: bool) -> List[str]:
    """One of sclite's per-speaker tables, centred in 80 columns: percentages (``-o sum``) or raw counts
    (``-o rsum``); the speaker column widens to the longest speaker id."""
    speakers = list(score.by_speaker.items())
    width = max(6 if raw else 8, max((len(s) + 2 for s, _ in speakers), default=0))
    inner = width + 56
    indent = " " * ((80 - inner - 2) // 2)

    def values(counts: Counts):
        if not raw:
            return counts.percentages()
        return (counts.correct, counts.substitutions, counts.deletions, counts.insertions,
                counts.substitutions + counts.deletions + counts.insertions, counts.sentence_errors)

    def row(label: str, snt, wrd, cells) -> str:
        first, *rest = cells
        number = (lambda v: f"{v:.1f}") if not raw or isinstance(first, float) else str
        return (f"{indent}|{label}|{snt:>5}{wrd:>7} |{number(first):>5}" + "".join(f"{number(v):>7}" for v in rest) + " |")

    rule = f"{indent}|{'-' * width}+-------------+-----------------------------------------|"
    lines = [
        "SYSTEM SUMMARY PERCENTAGES by SPEAKER".center(80),
        "",
        f"{indent},{'-' * inner}.",
        f"{indent}|{title_name.center(inner)}|",
        f"{indent}|{'-' * inner}|",
        f"{indent}| SPKR{' ' * (width - 5)}| # Snt # Wrd | Corr    Sub    Del    Ins    Err  S.Err |",
    ]
    for speaker, counts in speakers:
        lines += [rule, row(f" {speaker}".ljust(width), counts.sentences, counts.words, values(counts))]
    lines.append(f"{indent}|{'=' * inner}|")
    total = score.total
    lines.append(row((" Sum" if raw else " Sum/Avg").ljust(width), total.sentences, total.words, values(total)))
    lines.append(f"{indent}|{'=' * inner}|")
    per = [[float(v) for v in values(c)] for _, c in speakers]
    snts = [c.sentences for _, c in speakers]
    wrds = [c.words for _, c in speakers]
    for label, fn in (("Mean", statistics.mean), ("S.D.", _sd), ("Median", statistics.median)):
        lines.append(row(label.center(width), f"{fn(snts):.1f}", f"{fn(wrds):.1f}", [float(fn(col)) for col in zip(*per)]))
    lines.append(f"{indent}`{'-' * inner}'")
    return lines


def format_result(score: Score, name: str) -> str:
    """The tables ``sclite -i rm -o all`` starts its output with: percentages, then raw counts."""
    lines = ["", "", ""] + _table(name, score, raw=False) + ["", "", ""] + _table(name, score, raw=True) + ["", ""]
    return "\n".join(lines) + "\n"


def _sd(values) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def format_alignments(score: Score, name: str) -> str:
    """The alignment part of ``sclite -o all``: every utterance, grouped by speaker in order of appearance."""
    speakers = list(score.by_speaker)
    lines = ["\t\tDUMP OF SYSTEM ALIGNMENT STRUCTURE", "", f"System name:   {name}", "", "Speakers: "]
    lines += [f"{i:>5}:  {speaker}" for i, speaker in enumerate(speakers)]
    lines.append("")
    for i, speaker in enumerate(speakers):
        utts = [u for u in score.utterances if u.speaker == speaker]
        lines.append(f"Speaker sentences {i:>3}:  {speaker}   #utts: {len(utts)}")
        for utt in utts:
            c = utt.counts
            lines.append(f"id: ({speaker}-{utt.uttid.lower()})")
            lines.append(f"Scores: (#C #S #D #I) {c.correct} {c.substitutions} {c.deletions} {c.insertions}")
            lines += alignment_lines(utt.columns)
            lines.append("")
    lines.append("")
    return "\n".join(lines) + "\n"


def write_trn(table: Dict[str, List[str]], utt2spk: Dict[str, str], path: Path) -> None:
    """sclite's trn format, as ESPnet writes it: ``UNITS (spk-uttid)``."""
    lines = [f"{' '.join(table[uttid])}\t({utt2spk.get(uttid, uttid)}-{uttid})\n" for uttid in sorted(table)]
    write_text_atomic(path, "".join(lines))


def check_same_ids(ref_text: Path, ref: Dict[str, str], hyp_text: Path, hyp: Dict[str, str]) -> None:
    """``ValueError`` naming both files, the counts and a few ids, unless ``ref`` and ``hyp`` have the same
    keys: hypotheses for other utterances would otherwise score as all deleted (WER 100 %)."""
    missing, extra = sorted(set(ref) - set(hyp)), sorted(set(hyp) - set(ref))
    if not missing and not extra:
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {len(ref)} reference utterances have no hypothesis line "
                        f"(e.g. {', '.join(missing[:3])})")
    if extra:
        problems.append(f"{len(extra)} of {len(hyp)} hypotheses are for no reference utterance "
                        f"(e.g. {', '.join(extra[:3])})")
    raise ValueError(f"cannot score {hyp_text} against {ref_text}: {'; '.join(problems)}. "
                     "Decode the same set that the references are of")


def score_dir(ref_text: Path, hyp_text: Path, utt2spk_file: Path, out_dir: Path, metric: str,
              scoring_text: ScoringText = ScoringText()) -> Counts:
    """Write ``ref.trn``, ``hyp.trn`` and ``result.txt`` of ``metric`` (wer, cer, ter) to ``out_dir``;
    return the totals. The two files must hold the same utterance ids (an empty hypothesis is a line with
    the id alone, as ESPnet writes it); any other pair is refused, as sclite refuses it, before anything
    is written."""
    split_ref, split_hyp = scoring_text.splitter(metric, "ref"), scoring_text.splitter(metric, "hyp")
    ref_lines, hyp_lines = read_text(ref_text), read_text(hyp_text)
    check_same_ids(ref_text, ref_lines, hyp_text, hyp_lines)
    ref = {k: split_ref(v) for k, v in ref_lines.items()}
    hyp = {k: split_hyp(v) for k, v in hyp_lines.items()}
    utt2spk = read_text(utt2spk_file) if utt2spk_file.is_file() else {}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_trn(ref, utt2spk, out_dir / "ref.trn")
    write_trn({k: hyp.get(k, []) for k in ref}, utt2spk, out_dir / "hyp.trn")
    score = score_texts(ref, hyp, utt2spk)
    write_text_atomic(out_dir / "result.txt", format_result(score, "hyp.trn") + format_alignments(score, "hyp.trn"))
    return score.total


def score_decode_dir(data_dir: Path, decode_dir: Path, metrics: Optional[Sequence[str]] = None,
                     scoring_text: ScoringText = ScoringText()) -> Dict[str, Counts]:
    """Score ``<decode_dir>/1best_recog/text`` against ``<data_dir>/text`` into
    ``<decode_dir>/score_<metric>/`` for each metric (default: ESPnet's wer, cer, and ter when
    ``scoring_text`` has the bpe model); returns the totals by metric."""
    if metrics is None:
        metrics = ("wer", "cer", "ter") if scoring_text.bpemodel is not None else ("wer", "cer")
    hyp = decode_dir / "1best_recog" / "text"
    if not hyp.is_file():
        raise FileNotFoundError(f"no hypotheses: {hyp} does not exist (run the decoding stage first)")
    if not (data_dir / "text").is_file():
        raise FileNotFoundError(f"no references: {data_dir / 'text'} does not exist")
    return {
        metric: score_dir(data_dir / "text", hyp, data_dir / "utt2spk", decode_dir / f"score_{metric}", metric, scoring_text)
        for metric in metrics
    }
