"""Corpora live in their recipes (ESPnet's convention): the shared template knows no corpus, each recipe's
local/data.sh prepares its own, and stage 1 runs it with --local_data_opts."""
import os
import re
import shlex
import subprocess

import pytest

from conftest import REPO, recipe_from_template

TEMPLATE = REPO / "egs2" / "TEMPLATE" / "asr1" / "asr.sh"
ASR_RECIPES = [REPO / "egs2" / "librispeech" / "asr1", REPO / "egs2" / "lrs3" / "asr1"]

RECORDING_DATA_SH = """#!/usr/bin/env bash
# records its arguments (one a line) and the stage-1 settings asr.sh gives it, and writes every set asked for
set -euo pipefail
printf '%s\\n' "$@" > args.txt
printf '%s\\n' "${LRSMS_DATA_SETS}" "${LRSMS_DATADIR}" "${LRSMS_NJ}" "${LRSMS_ON_ERROR}" > env.txt
for dset in ${LRSMS_DATA_SETS}; do
    mkdir -p "${LRSMS_DATADIR}/${dset}"
    echo "u1 a.wav" > "${LRSMS_DATADIR}/${dset}/wav.scp"
    echo "u1 hello" > "${LRSMS_DATADIR}/${dset}/text"
done
"""


def test_the_template_names_no_corpus_and_each_recipe_prepares_its_own():
    text = TEMPLATE.read_text().lower()
    for name in ("librispeech", "lrs3"):
        assert name not in text, name
    for recipe in ASR_RECIPES:
        data_sh = recipe / "local" / "data.sh"
        assert data_sh.is_file() and os.access(data_sh, os.X_OK), data_sh
        assert "--corpus " not in (recipe / "run.sh").read_text()  # the recipe's corpus is its local/data.sh's
        assert (recipe / "asr.sh").is_symlink() and (recipe / "asr.sh").resolve() == TEMPLATE  # one template


def test_stage_1_passes_local_data_opts_and_the_sets_to_local_data_sh(tmp_path):
    recipe = recipe_from_template(tmp_path)
    (recipe / "local" / "data.sh").write_text(RECORDING_DATA_SH)
    (recipe / "local" / "data.sh").chmod(0o755)
    data = tmp_path / "my data"  # a path with a space
    opts = "--corpus_dir /corpora/mine --max 3"
    result = subprocess.run(
        ["./asr.sh", "--stage", "1", "--stop_stage", "1", "--train_set", "tr", "--valid_set", "dv",
         "--test_sets", "dv ev", "--asr_config", str(REPO / "conf" / "demo" / "train_asr_lrsms_tiny.yaml"),
         "--datadir", str(data), "--nj", "3", "--on_error", "skip", "--local_data_opts", opts],
        cwd=recipe, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (recipe / "args.txt").read_text().splitlines() == shlex.split(opts)  # ESPnet's: split into words
    assert (recipe / "env.txt").read_text().splitlines() == ["tr dv dv ev", str(data), "3", "skip"]
    assert f"local/data.sh {opts}" in result.stdout
    assert sorted(p.name for p in data.iterdir()) == ["dv", "ev", "tr"]
    (recipe / "local" / "data.sh").unlink()
    result = subprocess.run(["./asr.sh", "--stage", "1", "--stop_stage", "1", "--train_set", "tr", "--valid_set", "dv",
                             "--asr_config", str(REPO / "conf" / "demo" / "train_asr_lrsms_tiny.yaml")],
                            cwd=recipe, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"Stage 1 runs the recipe's local/data.sh, and {recipe} has none" in result.stderr


@pytest.mark.parametrize(
    "recipe, env, opts, message",
    [
        (ASR_RECIPES[0], {"LIBRISPEECH": "{tmp}/nowhere"}, "", "local/data.sh: LIBRISPEECH={tmp}/nowhere: no such directory"),
        (ASR_RECIPES[1], {"LRS3": "{tmp}/nowhere"}, "", "local/data.sh: LRS3={tmp}/nowhere: no such directory"),
        (ASR_RECIPES[1], {"LRS3": str(REPO / "demo" / "lrs3")}, "--valid_speakers {tmp}/none.txt",
         "local/data.sh: --valid_speakers {tmp}/none.txt: no such file"),
    ],
    ids=["librispeech-root", "lrs3-root", "lrs3-valid_speakers"],
)
def test_a_recipes_local_data_sh_names_what_is_missing_before_it_writes(tmp_path, recipe, env, opts, message):
    result = subprocess.run(
        ["./run.sh", "--stage", "1", "--stop_stage", "1", "--datadir", str(tmp_path / "data"), "--nbpe", "30",
         "--asr_config", "conf/demo/train_asr_lrsms_tiny.yaml", "--local_data_opts", opts.format(tmp=tmp_path)],
        cwd=recipe, env={**os.environ, **{k: v.format(tmp=tmp_path) for k, v in env.items()}},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout
    assert message.format(tmp=tmp_path) in result.stderr
    assert "Stage 1: local/data.sh" in result.stderr and "failed (exit 1)" in result.stderr
    assert not list(tmp_path.iterdir())  # nothing written


GENERAL_OPTIONS = ("stage", "stop_stage", "skip_stages", "skip_data_prep", "skip_train", "skip_eval", "skip_packing",
                   "skip_upload_hf", "ngpu", "num_nodes", "host", "nj", "inference_nj", "gpu_inference", "python",
                   "train_cmd", "cuda_cmd", "decode_cmd")


def test_asr_sh_and_avsr_sh_share_one_preamble_and_stages_10_11_one_data_array():
    utils = REPO / "egs2" / "TEMPLATE" / "asr1" / "utils"
    preamble = (utils / "recipe_preamble.sh").read_text()
    scripts = [TEMPLATE.read_text(), (REPO / "egs2" / "TEMPLATE" / "avsr1" / "avsr.sh").read_text()]
    for name in GENERAL_OPTIONS:  # defined once, in the shared file, and in neither script
        assert len(re.findall(rf"^{name}=", preamble, re.M)) == 1, name
        assert all(not re.search(rf"^{name}=", script, re.M) for script in scripts), name
    for script in scripts:
        assert '. "${here}/utils/recipe_preamble.sh"' in script
        assert '. "${here}/utils/parse_recipe_options.sh"' in script and "utils/parse_options.sh\"" not in script
        assert not re.search(r"^(log\(\)|run_args=)", script, re.M)
    asr = scripts[0]
    assert asr.count('"${data_opts[@]}"') == 2  # stage 10's collect-stats jobs and stage 11's training
    assert asr.count("_data_path_and_name_and_type \"${data_feats}") == 0
    assert len(re.findall(r"--(train|valid)_data_path_and_name_and_type \"\$\{data_files\[\d\]\}", asr)) == 4
