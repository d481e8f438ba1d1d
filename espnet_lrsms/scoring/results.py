"""RESULTS.md for an experiment directory, from the ``Sum/Avg`` rows of its ``result.txt`` files, in the
layout of ESPnet's ``show_asr_result.sh``: an "Environments" block, then WER, CER and TER tables with one
row per ``<decode dir>/<set>``, whatever the decode directory is called."""
import platform
import re
import subprocess
import time
from pathlib import Path
from typing import List, Optional, Tuple

from espnet_lrsms.fileio import write_text_atomic

SUM_AVG = re.compile(r"^\s*\|\s*Sum/Avg\s*\|\s*(\d+)\s+(\d+)\s*\|\s*([-\d.\s]+)\|")


def read_sum_avg(result_txt: Path) -> Optional[Tuple[int, int, List[float]]]:
    """(sentences, words, [Corr, Sub, Del, Ins, Err, S.Err]) of a sclite ``result.txt``."""
    for line in result_txt.read_text(encoding="utf-8").splitlines():
        match = SUM_AVG.match(line)
        if match:
            return int(match.group(1)), int(match.group(2)), [float(v) for v in match.group(3).split()]
    return None


def decode_tables_markdown(exp_dir: Path) -> str:
    """ESPnet's per-decode WER, CER and TER tables over ``<exp_dir>/*/*/score_<metric>/result.txt``,
    one row per ``<decode dir>/<set>``."""
    lines = []
    for metric in ("wer", "cer", "ter"):
        rows = []
        for result in sorted(exp_dir.glob(f"*/*/score_{metric}/result.txt")):
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


def _git(*args: str) -> Optional[str]:
    """A git query about this package's checkout; None outside one (a wheel install) or without git."""
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def environments_markdown() -> str:
    """ESPnet's "Environments" block: date, Python, ESPnet, PyTorch, this package, and its git commit."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    lines = [
        "## Environments",
        f"- date: `{time.strftime('%a %b %d %H:%M:%S %Z %Y')}`",
        f"- python version: `{platform.python_version()}`",
        f"- espnet version: `espnet {installed('espnet')}`",
        f"- pytorch version: `pytorch {installed('torch')}`",
        f"- espnet_lrsms version: `espnet_lrsms {installed('espnet_lrsms')}`",
    ]
    commit = _git("rev-parse", "HEAD")
    if commit is not None:
        dirty = " (with uncommitted changes)" if _git("status", "--porcelain", "--untracked-files=no") else ""
        lines.append(f"- Git hash: `{commit}`{dirty}")
        lines.append(f"  - Commit date: `{_git('log', '-1', '--format=%cd')}`")
    else:
        lines.append("- Git hash: `unknown (espnet_lrsms is not installed from a git checkout)`")
    return "\n".join(lines) + "\n"


def results_markdown(asr_exp: Path) -> str:
    return f"# RESULTS\n{environments_markdown()}\n## {asr_exp}\n" + decode_tables_markdown(asr_exp)


def write_results(asr_exp: Path) -> Path:
    return write_text_atomic(asr_exp / "RESULTS.md", results_markdown(asr_exp))
