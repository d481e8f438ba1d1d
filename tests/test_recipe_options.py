"""Recipe options that reach bash arithmetic take whole numbers only (no command runs from an option value)."""
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
