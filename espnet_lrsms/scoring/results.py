"""RESULTS.md for an experiment directory, from the ``Sum/Avg`` rows of its ``result.txt`` files."""
import re
from pathlib import Path
from typing import List, Optional, Tuple

from espnet_lrsms.fileio import write_text_atomic

SUM_AVG = re.compile(r"^\|\s*Sum/Avg\s*\|\s*(\d+)\s+(\d+)\s*\|\s*([-\d.\s]+)\|")


def read_sum_avg(result_txt: Path) -> Optional[Tuple[int, int, List[float]]]:
    """(sentences, words, [Corr, Sub, Del, Ins, Err, S.Err]) of a sclite ``result.txt``."""
    for line in result_txt.read_text(encoding="utf-8").splitlines():
        match = SUM_AVG.match(line)
        if match:
            return int(match.group(1)), int(match.group(2)), [float(v) for v in match.group(3).split()]
    return None


def decode_tables_markdown(exp_dir: Path, decode_glob: str = "decode_*/*") -> str:
    """ESPnet's per-decode WER and CER tables over ``<exp_dir>/<decode_glob>/score_{wer,cer}/result.txt``,
    one row per ``<decode dir>/<set>``."""
    lines = []
    for metric in ("wer", "cer"):
        rows = []
        for result in sorted(exp_dir.glob(f"{decode_glob}/score_{metric}/result.txt")):
            parsed = read_sum_avg(result)
            if parsed is None:
                continue
            snt, wrd, values = parsed
            dataset = f"{result.parent.parent.parent.name}/{result.parent.parent.name}"
            rows.append(f"|{dataset}|{snt}|{wrd}|" + "|".join(f"{v:.1f}" for v in values) + "|")
        if rows:
            lines += [
                f"### {metric.upper()}\n",
                "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|",
                "|---|---|---|---|---|---|---|---|---|",
                *rows,
                "",
            ]
    return "\n".join(lines) + "\n"


def results_markdown(asr_exp: Path) -> str:
    return f"# RESULTS\n\n## {asr_exp}\n\n" + decode_tables_markdown(asr_exp)


def write_results(asr_exp: Path) -> Path:
    return write_text_atomic(asr_exp / "RESULTS.md", results_markdown(asr_exp))
