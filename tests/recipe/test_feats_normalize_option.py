"""ESPnet's --feats_normalize: global_mvn trains with --normalize global_mvn and stage 10's statistics whatever the
config says; utterance_mvn and none pass nothing (the config decides), as ESPnet's asr.sh; the default here is
empty (the config decides), since the paper's front end normalises each utterance itself."""
import os
import subprocess

import pytest

from espnet_lrsms.bin import feats_stats
from espnet_lrsms.recipe.feats_stats import FeatsStatsError, normalize_plan

from conftest import DEMO_ARGS, LIBRI_RECIPE, REPO, stage_11_inputs

TINY = REPO / "conf" / "demo" / "train_asr_lrsms_tiny.yaml"  # normalize: null
FBANK = REPO / "conf" / "demo" / "train_asr_lrsms_tiny_fbank.yaml"  # normalize: global_mvn


@pytest.mark.parametrize(
    "config, feats_normalize, asr_args, words",
    [
        (TINY, "global_mvn", "", "global_mvn recipe"),  # ESPnet's --normalize=global_mvn wins over the config
        ("given", "global_mvn", "", "global_mvn recipe"),  # ... and its stats file over the config's
        (TINY, "global_mvn", "--normalize utterance_mvn", "utterance_mvn -"),  # --asr_args come last, as in ESPnet
        (TINY, "global_mvn", "--normalize_conf stats_file=my.npz", "global_mvn given"),
        (FBANK, "utterance_mvn", "", "global_mvn recipe"),  # nothing passed: the config's normalize
        (FBANK, "none", "", "global_mvn recipe"),
        (TINY, "utterance_mvn", "", "none -"),
        (TINY, "none", "", "none -"),
        ("plain", "utterance_mvn", "", "utterance_mvn -"),  # no normalize key: ESPnet's default
        (TINY, "", "", "none -"),
    ],
)
def test_feats_normalize_as_espnets_asr_sh(tmp_path, capsys, config, feats_normalize, asr_args, words):
    if config == "given":
        config = tmp_path / "given.yaml"
        config.write_text("normalize: global_mvn\nnormalize_conf:\n    stats_file: /data/stats.npz\n")
    elif config == "plain":
        config = tmp_path / "plain.yaml"
        config.write_text("frontend: default\n")
    assert feats_stats.main(["plan", "--config", str(config), f"--asr_args={asr_args}",
                             "--feats_normalize", feats_normalize]) == 0
    assert capsys.readouterr().out == words + "\n"


def test_an_unknown_feats_normalize_is_named():
    with pytest.raises(FeatsStatsError, match="--feats_normalize global_cmvn: expected one of global_mvn, utterance_mvn"):
        normalize_plan(TINY, "", "global_cmvn")


def _recipe(tmp_path, *args):
    return subprocess.run(["./run.sh", *DEMO_ARGS, "--datadir", str(tmp_path / "data"), "--expdir",
                           str(tmp_path / "exp"), *args], cwd=LIBRI_RECIPE, capture_output=True, text=True, timeout=120)


def test_the_recipe_takes_espnets_values_and_global_mvn_needs_stage_10s_statistics(tmp_path):
    """--feats_normalize global_mvn with the paper's front end (normalize: null): stage 11 trains with global_mvn,
    so it stops before training, naming stage 10's missing statistics; a value ESPnet does not know is named."""
    _, stats = stage_11_inputs(tmp_path)
    result = _recipe(tmp_path, "--stage", "11", "--stop_stage", "11", "--feats_normalize", "global_mvn")
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert (f"Stage 11 needs {stats}/train/feats_stats.npz (made by stage 10: --feats_normalize global_mvn "
            "normalizes with global_mvn), which is missing or empty") in result.stderr
    assert not list((tmp_path / "exp").glob("asr_train_*"))  # no training started
    for value in ("utterance_mvn", "none"):
        accepted = _recipe(tmp_path, "--stage", "99", "--stop_stage", "99", "--feats_normalize", value)
        assert accepted.returncode == 0, accepted.stderr
    refused = _recipe(tmp_path, "--stage", "99", "--stop_stage", "99", "--feats_normalize", "global_cmvn")
    assert refused.returncode == 1
    assert ("--feats_normalize global_cmvn: expected global_mvn, utterance_mvn or none (ESPnet's), or empty (the "
            "config's normalize: decides)") in refused.stderr


RECORDER = r"""#!/usr/bin/env bash
# a job runner with Kaldi's run.pl convention that records the command it is given instead of running it
printf '%s\n' "$@" > "$RUNNER_RECORD"
"""


def test_stage_10_gives_the_statistics_jobs_fs_and_global_mvn_as_espnet(tmp_path):
    """ESPnet's stage 10 command: --config, --frontend_conf fs=<fs>, then --asr_args; here also --normalize none
    (statistics of the unnormalised features). Recorded by a job runner of one's own (--train_cmd), nothing run."""
    from conftest import ALPHABET, write_tone_dataset

    for seed, dset in enumerate(("train_960", "dev")):
        write_tone_dataset(tmp_path / "dump" / "raw" / dset, 2, seed=seed)
    tokens = tmp_path / "data" / "en_token_list" / "char" / "tokens.txt"
    tokens.parent.mkdir(parents=True)
    tokens.write_text("\n".join(["<blank>", "<unk>", "<space>", *ALPHABET, "<sos/eos>"]) + "\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "record_runner.sh").write_text(RECORDER)
    (bin_dir / "record_runner.sh").chmod(0o755)
    record = tmp_path / "recorded"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNNER_RECORD": str(record)}
    result = subprocess.run(
        ["./run.sh", *DEMO_ARGS, "--datadir", str(tmp_path / "data"), "--expdir", str(tmp_path / "exp"),
         "--stage", "10", "--stop_stage", "10", "--token_type", "char", "--nj", "1", "--fs", "8k",
         "--feats_normalize", "global_mvn", "--train_cmd", "record_runner.sh", "--asr_args", "--max_epoch 1"],
        cwd=LIBRI_RECIPE, env=env, capture_output=True, text=True, timeout=120,
    )
    assert "Stage 10: --feats_normalize global_mvn normalizes with global_mvn: feature statistics of" in result.stdout
    assert result.returncode == 1  # the recorded jobs wrote no statistics: aggregating them names that
    assert "stats.1/train/feats_stats.npz: no such file: statistics job 1 wrote none" in result.stderr
    words = record.read_text().splitlines()
    assert words[0] == "JOB=1:1" and words[2:5] == ["python3", "-m", "espnet_lrsms.bin.asr_train"]
    at = words.index("--config")
    config = str(LIBRI_RECIPE / "conf" / "demo" / "train_asr_lrsms_tiny.yaml")
    assert words[at:at + 8] == ["--config", config, "--frontend_conf", "fs=8k", "--max_epoch", "1", "--normalize", "none"]
