"""Recipe options that reach bash arithmetic take whole numbers only (no command runs from an option value)."""
import os
import subprocess

import pytest

from conftest import REPO

RECIPES = [REPO / "egs2" / "librispeech" / "asr1", REPO / "egs2" / "lrs3" / "avsr1"]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.parent.name + "/" + p.name)
@pytest.mark.parametrize("option", ["--stage", "--stop_stage", "--nj", "--inference_nj", "--ngpu", "--num_nodes"])
def test_integer_option_rejects_a_command(tmp_path, recipe, option):
    marker = tmp_path / "ran"
    value = f"x[$(touch {marker})]"
    result = subprocess.run(["./run.sh", option, value], cwd=recipe, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"option {option} takes a whole number, got '{value}'" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.parent.name + "/" + p.name)
def test_config_relative_to_the_callers_directory(tmp_path, recipe):
    """run.sh changes to the recipe directory; a config named relative to where the user stands still counts."""
    option = "--asr_config" if recipe.name == "asr1" else "--avsr_config"
    (tmp_path / "my.yaml").write_text((REPO / "conf" / "demo" / "train_asr_lrsms_tiny.yaml").read_text())
    run = [str(recipe / "run.sh"), "--stage", "99", "--stop_stage", "99"]
    found = subprocess.run([*run, option, "my.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    missing = subprocess.run([*run, option, "other.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and f"{option} other.yaml: no such file" in missing.stderr


@pytest.mark.recipe
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--test_sets", "never_prepared"], "data/never_prepared/wav.scp: no such file (prepare the set with stage 1 first)"),
        (["--test_sets", "dev", "--inference_nj", "0"], "the number of decoding jobs must be at least 1, got 0"),
    ],
)
def test_decoding_stage_fails_naming_what_is_missing(tmp_path, extra, message):
    recipe = REPO / "egs2" / "librispeech" / "asr1"
    exp = tmp_path / "exp" / "asr_tiny"
    exp.mkdir(parents=True)
    (exp / "valid.acc.ave.pth").write_bytes(b"")
    (tmp_path / "data" / "dev").mkdir(parents=True)
    (tmp_path / "data" / "dev" / "wav.scp").write_text("u1 /nonexistent.wav\n")
    result = subprocess.run(
        ["./run.sh", "--stage", "5", "--stop_stage", "5", "--expdir", str(tmp_path / "exp"), "--asr_tag", "tiny",
         "--datadir", str(tmp_path / "data"), "--inference_asr_model", "valid.acc.ave.pth", *extra],
        cwd=recipe, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stdout[-2000:]
    assert message in result.stderr
    assert "Successfully finished" not in result.stdout + result.stderr
    assert not list((exp).glob("*/*.tmp"))  # nothing half-written left behind


def test_overriding_args_are_part_of_the_tags_and_training_checks_its_inputs(tmp_path):
    """Other --asr_args train into another experiment directory (never resuming the old one)."""
    recipe = REPO / "egs2" / "librispeech" / "asr1"
    result = subprocess.run(
        ["./run.sh", "--stage", "4", "--stop_stage", "4", "--expdir", str(tmp_path / "exp"), "--datadir", str(tmp_path / "data"),
         "--nbpe", "30", "--asr_config", "conf/demo/train_asr_lrsms_tiny.yaml", "--asr_args", "--max_epoch 3 --lr=0.1"],
        cwd=recipe, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert f"-> {tmp_path}/exp/asr_train_asr_lrsms_tiny_raw_en_bpe30_max_epoch3_lr0.1 " in result.stdout
    assert f"Stage 4 needs {tmp_path}/data/en_token_list/bpe_unigram30/tokens.txt (made by stages 1-3)" in result.stdout


AVSR_RECIPE = REPO / "egs2" / "lrs3" / "avsr1"
AVSR_EXP = "avsr_train_avsr_lrsms_tiny_raw_en_bpe30"


def _avsr_work(tmp_path, done):
    """What AVSR stages 1..``done`` leave behind (stand-in files: the checks only look for them)."""
    data, exp = tmp_path / "data", tmp_path / "exp"
    if done >= 1:
        for dset in ("train", "val", "test"):
            (data / dset).mkdir(parents=True)
            for name in ("wav.scp", "video.scp", "text"):
                (data / dset / name).write_text("u1 x\n")
    if done >= 2:
        bpe = data / "en_token_list" / "bpe_unigram30"
        bpe.mkdir(parents=True)
        (bpe / "bpe.model").write_text("x")
        (bpe / "tokens.txt").write_text("<blank>\n")
    if done >= 4:
        (exp / AVSR_EXP).mkdir(parents=True)
        (exp / AVSR_EXP / "config.yaml").write_text("x: 1\n")
        (exp / AVSR_EXP / "valid.acc.best.pth").write_text("x")
    return data, exp


@pytest.mark.parametrize(
    "stage, extra, message",
    [
        (1, ["--corpus_root", "{tmp}/nowhere"], "Stage 1 needs the corpus root {tmp}/nowhere (--corpus_root, LRS3 in db.sh)"),
        (1, ["--nj", "0"], "Stage 1: --nj must be at least 1, got 0"),
        (1, ["--landmarks_dir", "{tmp}/nolandmarks"], "Stage 1: --landmarks_dir {tmp}/nolandmarks: no such directory"),
        (2, [], "Stage 2 needs {tmp}/data/train/text (made by stage 1), which is missing or empty"),
        (3, [], "Stage 3 needs {tmp}/data/en_token_list/bpe_unigram30/bpe.model (made by stage 2)"),
        (4, [], "Stage 4 needs {tmp}/exp/avsr_stats_raw_en_bpe30/train/speech_shape (made by stage 3)"),
        (5, ["--inference_avsr_model", "valid.acc.ave.pth"],
         f"Stage 5 needs {{tmp}}/exp/{AVSR_EXP}/valid.acc.ave.pth (made by stage 4, or set --inference_avsr_model)"),
        (5, ["--test_sets", "test never_prepared"],
         "Stage 5 needs {tmp}/data/never_prepared/wav.scp (made by stage 1 with the set in --test_sets)"),
        (5, ["--inference_nj", "0"], "Stage 5: --inference_nj must be at least 1, got 0"),
        (5, ["--test_sets", ""], "Stage 5: --test_sets names nothing"),
        (6, ["--snrs", ""], "Stage 6: --snrs names nothing"),
        (6, ["--test_sets", "dev"], "Stage 6 needs {tmp}/data/dev/wav.scp (made by stage 1 with the set in --test_sets)"),
    ],
)
def test_avsr_stage_checks_its_inputs_first(tmp_path, stage, extra, message):
    """Each avsr.sh stage names what it lacks before it writes anything."""
    data, exp = _avsr_work(tmp_path, {1: 0, 2: 0, 3: 1, 4: 2}.get(stage, 4))
    before = sorted(tmp_path.rglob("*"))
    result = subprocess.run(
        ["./run.sh", "--stage", str(stage), "--stop_stage", str(stage), "--nbpe", "30", "--datadir", str(data),
         "--expdir", str(exp), "--avsr_config", "conf/avsr/demo/train_avsr_lrsms_tiny.yaml",
         "--inference_avsr_model", "valid.acc.best.pth", *[e.format(tmp=tmp_path) for e in extra]],
        cwd=AVSR_RECIPE, env={**os.environ, "LRS3": str(REPO / "demo" / "lrs3")},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert message.format(tmp=tmp_path) in result.stderr
    assert "Successfully finished" not in result.stdout
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, no .tmp left
