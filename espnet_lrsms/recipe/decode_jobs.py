"""Splitting a data set into decoding jobs and merging their n-best outputs (the one way both recipes do it).

A set's keys (the first column of ``wav.scp``, in file order) are dealt round-robin into
``<logdir>/keys.<j>.scp``, j = 1 … nj; each job writes ESPnet's ``<logdir>/output.<j>/<n>best_recog/``;
the merge concatenates every file of every ``<n>best_recog`` over the jobs, sorted by key, and, as
ESPnet's decoding stage does, copies the 1-best ``text``, ``token``, ``token_int`` and ``score`` to the top
of the decode directory.
"""
import shutil
from pathlib import Path
from typing import List

from espnet_lrsms.fileio import iter_kaldi_table

MERGED_FILES = ("text", "token", "token_int", "score", "score_components")
TOP_LEVEL_FILES = ("text", "token", "token_int", "score")


class DecodeJobsError(RuntimeError):
    """A set that cannot be decoded, or jobs that left no hypotheses; the message names the path."""


def split_keys(scp: Path, nj: int, logdir: Path) -> int:
    """Write ``keys.<j>.scp`` for at most ``nj`` jobs (no more jobs than keys); returns the job count."""
    if nj < 1:
        raise DecodeJobsError(f"the number of decoding jobs must be at least 1, got {nj}")
    if not scp.is_file():
        raise DecodeJobsError(f"{scp}: no such file (prepare the set with stage 1 first)")
    keys = [key for _, key, _ in iter_kaldi_table(scp)]
    if not keys:
        raise DecodeJobsError(f"{scp} is empty: nothing to decode")
    nj = min(nj, len(keys))
    logdir.mkdir(parents=True, exist_ok=True)
    for j in range(1, nj + 1):
        (logdir / f"keys.{j}.scp").write_text("".join(f"{k}\n" for k in keys[j - 1 :: nj]), encoding="utf-8")
    return nj


def merge_outputs(logdir: Path, nj: int, out_dir: Path) -> List[str]:
    """Merge ``<logdir>/output.<j>/<n>best_recog/*`` into ``<out_dir>/<n>best_recog/*``; returns the
    ``<n>best_recog`` names merged. Jobs that wrote no 1-best text are an error."""
    names = sorted(p.name for p in (logdir / "output.1").glob("*best_recog") if p.is_dir())
    if "1best_recog" not in names:
        raise DecodeJobsError(f"{logdir / 'output.1' / '1best_recog'}: missing (the decoding jobs wrote no hypotheses)")
    for name in names:
        (out_dir / name).mkdir(parents=True, exist_ok=True)
        for file_name in MERGED_FILES:
            parts = [logdir / f"output.{j}" / name / file_name for j in range(1, nj + 1)]
            lines = [line for part in parts if part.is_file() for line in part.read_text(encoding="utf-8").splitlines()]
            if lines:
                lines.sort(key=lambda line: line.split(maxsplit=1)[0])
                (out_dir / name / file_name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    if not (out_dir / "1best_recog" / "text").is_file():
        raise DecodeJobsError(f"decoding gave no {out_dir / '1best_recog' / 'text'}")
    for file_name in TOP_LEVEL_FILES:
        if (out_dir / "1best_recog" / file_name).is_file():
            shutil.copyfile(out_dir / "1best_recog" / file_name, out_dir / file_name)
    return names
