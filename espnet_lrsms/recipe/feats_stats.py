"""Stage 10 for configs with ``normalize: global_mvn``: the training set's feature statistics.

ESPnet's filterbank configs (``frontend: default``) normalise the front end's features with the global
mean and variance of the training set (``GlobalMVN``), read from ``<asr_stats_dir>/train/feats_stats.npz``
(``count``, ``sum`` and ``sum_square`` per feature dimension). As ESPnet's stage 10 does, the recipe
splits the keys into jobs (:func:`split_stats_keys`), runs ``asr_train --collect_stats true`` on each
(asr.sh, through ``--train_cmd``) and sums the jobs with ESPnet's ``aggregate_stats_dirs``
(:func:`aggregate_feats_stats`); stage 11 then trains with ``--normalize_conf stats_file=...``.

The recipe's ``--feats_normalize global_mvn`` (ESPnet's asr.sh default; here the default is empty) does the
same for any config, as ESPnet's stage 11 passes ``--normalize=global_mvn`` whatever the config says.
Every other config needs no statistics (:func:`normalize_plan` decides): the paper's ResNet-1D front
end z-normalises each utterance itself (``normalize: null``), and ``utterance_mvn`` (ESPnet's
default) works per utterance, so stage 10 writes only the shape files, from the audio headers.
"""
import logging
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np
import yaml

from espnet_lrsms.fileio import iter_kaldi_table, replaced_on_success
from espnet_lrsms.recipe.decode_jobs import split_keys

logger = logging.getLogger(__name__)

ESPNET_DEFAULT_NORMALIZE = "utterance_mvn"  # ASRTask's --normalize default (tests/recipe/test_feats_stats.py pins it)
STATS_FILE = "feats_stats.npz"
STATS_KEYS = ("count", "sum", "sum_square")
NONE_WORDS = {"none", "null", "nil"}  # what ESPnet's str_or_none reads as None
FEATS_NORMALIZE = ("", "global_mvn", "utterance_mvn", "none")  # asr.sh's --feats_normalize ("": the config's)


class FeatsStatsError(RuntimeError):
    """Bad input to the statistics step; the message names the file or option."""


@dataclass(frozen=True)
class NormalizePlan:
    """What a training config (plus ``--asr_args``) does with the front end's features."""

    normalize: str  # ESPnet's normalize choice, "none" for null
    stats_given: bool  # the config's normalize_conf names a stats_file, or --asr_args sets normalize_conf

    @property
    def recipe_stats(self) -> bool:
        """Stage 10 computes ``feats_stats.npz`` and stage 11 passes it."""
        return self.normalize == "global_mvn" and not self.stats_given

    def words(self) -> str:
        """``<normalize> <recipe|given|->``: one line for asr.sh."""
        if self.normalize != "global_mvn":
            return f"{self.normalize} -"
        return f"{self.normalize} {'given' if self.stats_given else 'recipe'}"


def _option_values(args: Sequence[str], name: str):
    """The values of ``--name X`` / ``--name=X`` in ``args`` (ESPnet's spelling, or with hyphens)."""
    spellings = {f"--{name}", f"--{name.replace('_', '-')}"}
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if flag in spellings:
            if eq:
                yield value
            elif i + 1 < len(args):
                yield args[i + 1]
            else:
                raise FeatsStatsError(f"--asr_args: {arg} has no value")


def normalize_plan(config: Path, asr_args: str = "", feats_normalize: str = "") -> NormalizePlan:
    """The normalisation ``config`` trains with, ``--normalize`` / ``--normalize_conf`` of ``asr_args``
    taking precedence (as on ESPnet's command line).

    ``feats_normalize`` is the recipe's ``--feats_normalize``, with ESPnet's asr.sh meaning: ``global_mvn``
    trains with ``--normalize global_mvn`` and stage 10's statistics (whatever the config says; ``asr_args``,
    which come after, still win); ``utterance_mvn`` and ``none`` pass nothing, so the config's ``normalize:``
    decides (ESPnet's default, ``utterance_mvn``, without one); ``""``, this recipe's default, likewise.
    """
    if feats_normalize not in FEATS_NORMALIZE:
        raise FeatsStatsError(f"--feats_normalize {feats_normalize}: expected one of "
                              f"{', '.join(v for v in FEATS_NORMALIZE if v)} (ESPnet's), or empty: the config decides")
    try:
        data = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise FeatsStatsError(f"{config}: cannot read the training config: {error}") from error
    if not isinstance(data, dict):
        raise FeatsStatsError(f"{config}: a training config is a mapping of options, got {type(data).__name__}")
    normalize = data.get("normalize", ESPNET_DEFAULT_NORMALIZE)
    conf = data.get("normalize_conf") or {}
    if not isinstance(conf, dict):
        raise FeatsStatsError(f"{config}: normalize_conf must be a mapping, got {conf!r}")
    stats_given = "stats_file" in conf
    if feats_normalize == "global_mvn":  # ESPnet's stage 11: --normalize=global_mvn --normalize_conf stats_file=...
        normalize, stats_given = "global_mvn", False
    try:
        args = shlex.split(asr_args)
    except ValueError as error:
        raise FeatsStatsError(f"--asr_args {asr_args!r}: {error}") from error
    for value in _option_values(args, "normalize"):
        normalize = value
    if any(True for _ in _option_values(args, "normalize_conf")):
        stats_given = True
    normalize = "none" if normalize is None or str(normalize).lower() in NONE_WORDS else str(normalize).lower()
    return NormalizePlan(normalize, stats_given)


def _keys(scp: Path):
    if not scp.is_file():
        raise FeatsStatsError(f"{scp}: no such file (made by stage 1)")
    keys = [key for _, key, _ in iter_kaldi_table(scp)]
    if not keys:
        raise FeatsStatsError(f"{scp} is empty: no utterances to collect statistics from")
    return keys


def split_stats_keys(train_scp: Path, valid_scp: Path, nj: int, logdir: Path) -> int:
    """``<logdir>/{train,valid}/keys.<j>.scp`` for the same number of jobs (at most ``nj``, at most one
    per utterance of either set); returns that number."""
    if nj < 1:
        raise FeatsStatsError(f"the number of statistics jobs (--nj) must be at least 1, got {nj}")
    nj = min(nj, len(_keys(train_scp)), len(_keys(valid_scp)))
    split_keys(train_scp, nj, logdir / "train")
    split_keys(valid_scp, nj, logdir / "valid")
    return nj


def read_feats_stats(path: Path) -> Tuple[int, np.ndarray, np.ndarray]:
    """``(count, mean, var)`` of an ESPnet ``feats_stats.npz``, as ``GlobalMVN`` computes them."""
    try:
        with np.load(path, allow_pickle=False) as stats:
            missing = [key for key in STATS_KEYS if key not in stats]
            if missing:
                raise FeatsStatsError(f"{path}: not ESPnet's feature statistics (no {', '.join(missing)})")
            count, total, square = (np.asarray(stats[key], dtype=np.float64) for key in STATS_KEYS)
    except (OSError, ValueError) as error:
        raise FeatsStatsError(f"{path}: cannot read feature statistics: {error}") from error
    if count.size != 1 or count.item() <= 0:
        raise FeatsStatsError(f"{path}: count is {count.tolist()}, expected one positive number of frames")
    mean = total / count.item()
    return int(count.item()), mean, square / count.item() - mean * mean


def aggregate_feats_stats(logdir: Path, nj: int, stats_dir: Path) -> Path:
    """Sum the statistics of the jobs ``<logdir>/stats.<j>`` (ESPnet's ``aggregate_stats_dirs``) and
    install ``feats_stats.npz`` of both sets as ``<stats_dir>/{train,valid}/feats_stats.npz``; returns the
    training set's."""
    from espnet2.bin.aggregate_stats_dirs import aggregate_stats_dirs

    jobs = [logdir / f"stats.{j}" for j in range(1, nj + 1)]
    for j, job in enumerate(jobs, 1):
        for mode in ("train", "valid"):
            if not (job / mode / STATS_FILE).is_file():
                raise FeatsStatsError(
                    f"{job / mode / STATS_FILE}: no such file: statistics job {j} wrote none "
                    f"(see {logdir}/stats.{j}.log)"
                )
    summed = logdir / "aggregated"
    shutil.rmtree(summed, ignore_errors=True)
    aggregate_stats_dirs(input_dir=jobs, output_dir=summed, log_level="INFO", skip_sum_stats=False)
    for mode in ("train", "valid"):
        source = summed / mode / STATS_FILE
        count, mean, var = read_feats_stats(source)
        (stats_dir / mode).mkdir(parents=True, exist_ok=True)
        with replaced_on_success(stats_dir / mode / STATS_FILE) as tmp:
            shutil.copyfile(source, tmp)
        logger.info(
            "%s: %d frames of %d-dim features, mean in [%.3g, %.3g], std in [%.3g, %.3g]",
            stats_dir / mode / STATS_FILE, count, mean.size, mean.min(), mean.max(),
            np.sqrt(np.maximum(var, 0)).min(), np.sqrt(np.maximum(var, 0)).max(),
        )
    return stats_dir / "train" / STATS_FILE

