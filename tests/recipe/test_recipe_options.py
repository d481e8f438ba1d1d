"""Recipe options that reach bash arithmetic take whole numbers only (no command runs from an option value)."""
import os
import subprocess

import pytest

from conftest import REPO

RECIPES = [REPO / "egs2" / "librispeech" / "asr1", REPO / "egs2" / "lrs3" / "avsr1_lrsms"]


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


@pytest.mark.end_to_end
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--test_sets", "never_prepared"], "dump/raw/never_prepared/wav.scp: no such file"),
        (["--test_sets", "dev", "--inference_nj", "0"], "the number of decoding jobs must be at least 1, got 0"),
    ],
)
def test_decoding_stage_fails_naming_what_is_missing(tmp_path, extra, message):
    recipe = REPO / "egs2" / "librispeech" / "asr1"
    exp = tmp_path / "exp" / "asr_tiny"
    exp.mkdir(parents=True)
    (exp / "valid.acc.ave.pth").write_bytes(b"x")
    (exp / "config.yaml").write_text("x: 1\n")
    (tmp_path / "dump" / "raw" / "dev").mkdir(parents=True)  # stage 3's output, which stage 12 decodes
    (tmp_path / "dump" / "raw" / "dev" / "wav.scp").write_text("u1 /nonexistent.wav\n")
    result = subprocess.run(
        ["./run.sh", "--stage", "12", "--stop_stage", "12", "--expdir", str(tmp_path / "exp"), "--asr_tag", "tiny",
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
        ["./run.sh", "--stage", "11", "--stop_stage", "11", "--expdir", str(tmp_path / "exp"), "--datadir", str(tmp_path / "data"),
         "--nbpe", "30", "--asr_config", "conf/demo/train_asr_lrsms_tiny.yaml", "--asr_args", "--max_epoch 3 --lr=0.1"],
        cwd=recipe, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert f"-> {tmp_path}/exp/asr_train_asr_lrsms_tiny_raw_en_bpe30_max_epoch3_lr0.1 " in result.stdout
    assert f"Stage 11 needs {tmp_path}/data/en_token_list/bpe_unigram30/bpe.model (made by stage 5)" in result.stderr
    assert not (tmp_path / "exp").exists()  # checked before anything is written


AVSR_RECIPE = REPO / "egs2" / "lrs3" / "avsr1_lrsms"
AVSR_EXP = "avsr_train_avsr_lrsms_tiny_raw_en_bpe30"


def _avsr_work(tmp_path, done):
    """What AVSR stages 1..``done`` leave behind (stand-in files: the checks only look for them)."""
    data, exp = tmp_path / "data", tmp_path / "exp"
    if done >= 1:
        for dset in ("train", "dev", "test"):
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
        (1, ["--valid_speakers", "{tmp}/none.txt"], "Stage 1: --valid_speakers {tmp}/none.txt: no such file"),
        (5, [], "Stage 5 needs {tmp}/data/train/text (made by stage 1), which is missing or empty"),
        (10, [], "Stage 10 needs {tmp}/data/en_token_list/bpe_unigram30/bpe.model (made by stage 5)"),
        (11, [], "Stage 11 needs {tmp}/exp/avsr_stats_raw_en_bpe30/train/speech_shape (made by stage 10)"),
        (12, ["--inference_avsr_model", "valid.acc.ave.pth"],
         f"Stage 12 needs {{tmp}}/exp/{AVSR_EXP}/valid.acc.ave.pth (made by stage 11, or set --inference_avsr_model)"),
        (12, ["--test_sets", "test never_prepared"],
         "Stage 12 needs {tmp}/data/never_prepared/wav.scp (made by stage 1 with the set in --test_sets)"),
        (12, ["--inference_nj", "0"], "Stage 12: --inference_nj must be at least 1, got 0"),
        (12, ["--test_sets", ""], "Stage 12: --test_sets names nothing"),
        (13, [], f"Stage 13 needs {{tmp}}/exp/{AVSR_EXP}/decode_avsr_tiny_avsr_model_valid.acc.best/test/score_wer/result.txt (made by stage 12)"),
        (17, ["--snrs", ""], "Stage 17: --snrs names nothing"),
        (17, ["--test_sets", "val"], "Stage 17 needs {tmp}/data/val/wav.scp (made by stage 1 with the set in --test_sets)"),
    ],
)
def test_avsr_stage_checks_its_inputs_first(tmp_path, stage, extra, message):
    """Each avsr.sh stage names what it lacks before it writes anything."""
    data, exp = _avsr_work(tmp_path, {1: 0, 5: 0, 10: 1, 11: 2}.get(stage, 4))
    before = sorted(tmp_path.rglob("*"))
    result = subprocess.run(
        ["./run.sh", "--stage", str(stage), "--stop_stage", str(stage), "--nbpe", "30", "--datadir", str(data),
         "--expdir", str(exp), "--avsr_config", "conf/avsr/demo/train_avsr_lrsms_tiny.yaml",
         "--inference_config", "conf/avsr/demo/decode_avsr_tiny.yaml",
         "--inference_avsr_model", "valid.acc.best.pth", *[e.format(tmp=tmp_path) for e in extra]],
        cwd=AVSR_RECIPE, env={**os.environ, "LRS3": str(REPO / "demo" / "lrs3")},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert message.format(tmp=tmp_path) in result.stderr
    assert "Successfully finished" not in result.stdout
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, no .tmp left


def _asr(tmp_path, *args):
    return subprocess.run(
        ["./run.sh", "--expdir", str(tmp_path / "exp"), "--datadir", str(tmp_path / "data"), "--nbpe", "30",
         "--asr_config", "conf/demo/train_asr_lrsms_tiny.yaml", *args],
        cwd=RECIPES[0], env={**os.environ, "LIBRISPEECH": str(REPO / "demo" / "librispeech")},
        capture_output=True, text=True, timeout=60,
    )


def test_stage_numbers_and_skip_options_are_espnets(tmp_path):
    """--skip_data_prep leaves out 1-5 and --skip_train 6-11, as ESPnet's asr.sh; 2 says why it does nothing."""
    result = _asr(tmp_path, "--stage", "1", "--stop-stage", "11", "--skip_data_prep", "true", "--skip-train", "true")
    assert result.returncode == 0, result.stderr
    for n in range(1, 6):
        assert f"Stage {n} skipped (--skip_data_prep true)" in result.stdout
    for n in range(6, 12):
        assert f"Stage {n} skipped (--skip_train true)" in result.stdout
    assert "Stage 12" not in result.stdout
    result = _asr(tmp_path, "--stage", "2", "--stop_stage", "2", "--speed_perturb_factors", "")
    assert result.returncode == 0, result.stderr
    assert "Stage 2: no speed perturbation (--speed_perturb_factors is empty)" in result.stdout
    result = _asr(tmp_path, "--stage", "3", "--stop_stage", "3")  # stage 3 formats stage 1's sets
    assert result.returncode == 1 and f"Stage 3 needs {tmp_path}/data/train_960/wav.scp (made by stage 1)" in result.stderr
    result = _asr(tmp_path, "--stage", "4", "--stop_stage", "4")  # the duration filter reads stage 3's dump
    assert result.returncode == 1
    assert f"Stage 4 needs {tmp_path}/dump/raw/org/train_960/wav.scp (made by stage 3)" in result.stderr
    for option, message in (("--feats_type", "--feats_type fbank_pitch: not supported, only raw"),
                            ("--audio_format", "--audio_format fbank_pitch: expected flac or wav")):
        result = _asr(tmp_path, "--stage", "3", "--stop_stage", "3", option, "fbank_pitch")
        assert result.returncode == 1 and message in result.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_lm_stages_say_they_need_an_lm_config_and_hf_upload_needs_a_repo(tmp_path):
    result = _asr(tmp_path, "--stage", "6", "--stop_stage", "9")
    assert result.returncode == 0, result.stderr
    for n in range(6, 10):
        assert f"Stage {n} skipped: no --lm_config" in result.stdout
    result = _asr(tmp_path, "--stage", "15", "--stop_stage", "16")
    assert "Stage 15 skipped (--skip_upload_hf true)" in result.stdout and result.returncode == 0
    assert "Stage 16" not in result.stdout  # ESPnet 202511 uploads in stage 15 (tests/recipe/test_espnet_options.py)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--skip_train", "yes"], "--skip_train takes true or false, got 'yes'"),
        (["--stop-stage", "x"], "option --stop-stage takes a whole number, got 'x'"),
        (["--no-such-option", "1"], "unknown option --no-such-option"),
        (["--stage", "14", "--stop_stage", "14", "--skip_packing", "false"], "Stage 14 needs {tmp}/exp/asr_train_asr_lrsms_tiny_raw_en_bpe30/config.yaml (made by stages 11 and 13)"),
        (["--stage", "13", "--stop_stage", "13", "--test_sets", "dev_clean"],
         "Stage 13 needs {tmp}/exp/asr_train_asr_lrsms_tiny_raw_en_bpe30/decode_asr_asr_model_valid.acc.ave/dev_clean/1best_recog/text (made by stage 12)"),
        (["--stage", "10", "--stop_stage", "10", "--speed_perturb_factors", "0.9 1.0 1.1"],
         "Stage 10 needs {tmp}/data/en_token_list/bpe_unigram30/bpe.model (made by stage 5)"),
    ],
)
def test_asr_options_and_stage_inputs_are_checked_first(tmp_path, args, message):
    result = _asr(tmp_path, *[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 1, result.stdout
    assert message.format(tmp=tmp_path) in result.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_an_empty_list_option_names_no_file(tmp_path):
    """--lora_config "" (no adaptation) is an empty list, not the caller's directory."""
    result = _asr(tmp_path, "--stage", "99", "--lm_config", "conf/lm/demo/train_lm_transformer_tiny.yaml", "--lora_config", "")
    assert result.returncode == 0, result.stderr


def test_stage_2_speed_perturbs_the_training_set_that_stages_10_11_use(tmp_path):
    from conftest import write_tone_dataset

    train = write_tone_dataset(tmp_path / "data" / "train_clean_100", 3, seed=0)
    (train / "utt2spk").write_text("".join(f"utt{i:03d} spk{i}\n" for i in range(3)))
    result = _asr(tmp_path, "--stage", "2", "--stop_stage", "2", "--speed_perturb_factors", "0.9 1.0", "--nj", "1",
                  "--train_set", "train_clean_100", "--valid_set", "dev_clean")
    assert result.returncode == 0, result.stderr[-2000:]
    sp = (tmp_path / "data" / "train_clean_100_sp" / "wav.scp").read_text().splitlines()
    assert len(sp) == 6 and sum(line.startswith("sp0.9-") for line in sp) == 3
    result = _asr(tmp_path, "--stage", "11", "--stop_stage", "11", "--speed_perturb_factors", "0.9 1.0",
                  "--train_set", "train_clean_100", "--valid_set", "dev_clean")
    assert result.returncode == 1
    assert "-> " + str(tmp_path / "exp" / "asr_train_asr_lrsms_tiny_raw_en_bpe30_sp") + " " in result.stdout  # ESPnet's _sp tag


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.parent.name + "/" + p.name)
def test_integer_options_are_read_in_base_10(tmp_path, recipe):
    """A leading 0 is not octal: --stage 08 runs stage 8 (bash would refuse 08 and read 010 as 8)."""
    for given, meant in [("08", 8), ("010", 10), ("0015", 15)]:
        result = subprocess.run(["./run.sh", "--stage", given, "--stop_stage", given], cwd=recipe,
                                env={**os.environ, "LIBRISPEECH": str(tmp_path), "LRS3": str(tmp_path)},
                                capture_output=True, text=True, timeout=60)
        assert f"Stage {meant}" in result.stdout + result.stderr, (given, result.stdout, result.stderr)
        for other in {8, 10, 16} - {meant}:
            assert f"Stage {other}" not in result.stdout + result.stderr
