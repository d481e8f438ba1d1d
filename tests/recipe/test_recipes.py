"""The recipes end to end on the bundled demo corpora, through run.sh as a user runs them."""
import csv
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from conftest import (DECODE, DEMO_ARGS, LIBRI_RECIPE, LRS3_RECIPE, REPO, TAG, readme_demo_table, results_tables, run_recipe,
                      wer_of)

pytestmark = pytest.mark.end_to_end  # end to end: slow, deselect with -m "not end_to_end"


def test_demo_learns_the_training_speakers(librispeech_demo):
    work, stdout = librispeech_demo
    exp = work / "exp" / f"asr_{TAG}"
    results = (exp / "RESULTS.md").read_text()
    assert results in stdout  # stage 13 prints the table
    seen, unseen = wer_of(results, "dev_clean"), wer_of(results, "test_clean")
    print(f"demo WER: seen speakers {seen} %, unseen speakers {unseen} %")
    assert seen < 40.0  # from 100 % (an untrained model) to well below
    assert unseen < 90.0


def results_rows(results_md: str, metric: str) -> dict:
    """``{dataset: [Snt, Wrd, Corr, Sub, Del, Ins, Err, S.Err]}`` of RESULTS.md's ``### <metric>`` table."""
    section = results_md[results_md.index(f"### {metric}\n") + 1:]
    section = section[: section.find("\n#")] if "\n#" in section else section
    rows = re.findall(rf"^\|{re.escape(DECODE)}/(\w+)\|([^\n]*)\|$", section, re.M)
    return {dataset: [float(v) for v in cells.split("|")] for dataset, cells in rows}


def test_demo_results_are_readmes_table(librispeech_demo):
    """README's demo table is what its command gives: the same counts, WER and CER within README's tolerance."""
    work, _ = librispeech_demo
    results = (work / "exp" / f"asr_{TAG}" / "RESULTS.md").read_text()
    wer, cer = results_rows(results, "WER"), results_rows(results, "CER")
    table, tolerance = readme_demo_table()
    assert sorted(table) == sorted(wer) == ["dev_clean", "test_clean"]
    for dataset, row in table.items():
        measured = dict(zip(["Snt", "Wrd", "Corr", "Sub", "Del", "Ins", "WER", "S.Err"], wer[dataset]), CER=cer[dataset][6])
        print(dataset, measured)
        assert (row["Snt"], row["Wrd"]) == (measured["Snt"], measured["Wrd"]), dataset
        for column in ("WER", "CER"):
            assert abs(row[column] - measured[column]) <= tolerance, (dataset, column, row[column], measured[column])


def test_demo_outputs_are_in_espnets_layout(librispeech_demo):
    work, _ = librispeech_demo
    exp = work / "exp" / f"asr_{TAG}"
    for metric in ("wer", "cer", "ter"):  # ESPnet scores TER too for token_type bpe (in bpe.model's pieces)
        for name in ("ref.trn", "hyp.trn", "result.txt"):
            assert (exp / DECODE / "test_clean" / f"score_{metric}" / name).is_file()
    assert "Sum/Avg" in (exp / DECODE / "test_clean" / "score_ter" / "result.txt").read_text()
    assert "### TER" in (exp / "RESULTS.md").read_text()
    # stage 3: ESPnet's dump/raw (the demo's 16 kHz FLAC files referenced as they are); stage 4: ESPnet's
    # duration filter (0.1-20 s keeps every demo utterance) from dump/raw/org/<set> into dump/raw/<set> on the
    # training and validation sets; never on a test set
    raw = work / "dump" / "raw"
    for dset in ("train_clean_100", "dev_clean"):
        assert (raw / "org" / dset / "wav.scp").read_text() == (raw / dset / "wav.scp").read_text()
        assert (raw / "org" / dset / "wav.scp").read_text() == (work / "data" / dset / "wav.scp").read_text()
        assert (raw / dset / "filtered.txt").read_text() == ""
        assert (raw / dset / "utt2num_samples").is_file() and (raw / dset / "text").is_file()
    assert not (raw / "org" / "test_clean").exists() and (raw / "test_clean" / "wav.scp").is_file()
    nbest = exp / DECODE / "test_clean" / "5best_recog"
    assert len((nbest / "text").read_text().splitlines()) == 24  # n-best lists kept, every utterance
    assert (exp / DECODE / "test_clean" / "1best_recog" / "score").is_file()
    stats = work / "exp" / "asr_stats_raw_en_bpe30"
    assert (stats / "train" / "speech_shape").is_file() and (stats / "valid" / "text_shape.bpe").is_file()
    assert (exp / "40epoch.pth").is_file()


def test_stage_11_trains_and_leaves_a_run_sh_that_reruns_it(librispeech_demo):
    """ESPnet's stage numbers: the second run (--stage 11) trained, decoded, scored, packed and wrote the HF repo."""
    work, stdout = librispeech_demo
    exp = work / "exp" / f"asr_{TAG}"
    second = stdout[stdout.index("Stage 11: training"):]
    for n in (12, 13, 14, 15):
        assert f"Stage {n}: " in second
    assert "Stage 15: nothing uploaded (no --hf_repo)" in second and "Stage 16" not in second
    assert "Stage 17 skipped: no --lm_config" in second
    run_sh = (exp / "run.sh").read_text()
    assert run_sh.rstrip().endswith('--stage 11 "$@"; exit $?')
    assert "--skip_packing false --skip_upload_hf false" in run_sh and "lrsms\\ checkout" in run_sh  # the path with a space, quoted
    assert (exp / "hf_repo" / "README.md").is_file()  # stage 15: the model repository, ready to push


def test_packed_model_loads_in_speech2text(librispeech_demo, tmp_path):
    import soundfile
    from espnet2.bin.asr_inference import Speech2Text
    from espnet2.main_funcs.pack_funcs import unpack

    import espnet_lrsms  # noqa: F401  (what a user of the pack imports first: registers the classes)

    work, _ = librispeech_demo
    pack = work / "exp" / f"asr_{TAG}" / f"asr_{TAG}_valid.acc.best.zip"  # ESPnet's name
    files = unpack(pack, tmp_path)
    s2t = Speech2Text(**{k: v for k, v in files.items() if k in ("asr_train_config", "asr_model_file")}, beam_size=4)
    wav = (work / "data" / "dev_clean" / "wav.scp").read_text().split("\n")[0].split()[1]
    text = s2t(soundfile.read(wav, dtype="float32")[0])[0][0]
    assert isinstance(text, str)



def test_the_demo_decodes_the_same_without_torch_or_espnet(librispeech_demo, tmp_path):
    """docs/deploy.md's commands on README's demo model: exported to ONNX (fp32), its test set decoded by the
    ESPnet-free runtime with the demo's decoding config gives stage 12's PyTorch 1-best, utterance for utterance."""
    from espnet_lrsms.deploy.onnx_export import export_experiment
    from espnet_lrsms.deploy.onnx_runtime import decode_wav_scp

    work, _ = librispeech_demo
    exp = work / "exp" / f"asr_{TAG}"
    export_experiment(exp, "valid.acc.best.pth", tmp_path / "onnx", None,
                      LIBRI_RECIPE / "conf" / "demo" / "decode_asr_tiny.yaml")
    runtime = {utt: " ".join(text.split())
               for utt, text in decode_wav_scp(tmp_path / "onnx", work / "dump" / "raw" / "test_clean" / "wav.scp")}
    pytorch = {}
    for line in (exp / DECODE / "test_clean" / "1best_recog" / "text").read_text(encoding="utf-8").splitlines():
        utt, _, text = line.partition(" ")
        pytorch[utt] = " ".join(text.split())
    assert len(runtime) == 24
    assert {u: t for u, t in runtime.items() if pytorch.get(u) != t} == {}, pytorch

def test_rerunning_a_stage_is_safe(librispeech_demo):
    work, _ = librispeech_demo
    before = results_tables((work / "exp" / f"asr_{TAG}" / "RESULTS.md").read_text())
    run_recipe(
        LIBRI_RECIPE, "LIBRISPEECH", REPO / "demo" / "librispeech", work,
        "--train_set", "train_clean_100", "--valid_set", "dev_clean", "--test_sets", "dev_clean test_clean",
        "--stage", "13", "--stop_stage", "13",
    )
    assert results_tables((work / "exp" / f"asr_{TAG}" / "RESULTS.md").read_text()) == before


def test_full_rank_warmup_then_low_rank_through_stage_11(librispeech_demo, tmp_path):
    """--warmup_full_rank_epochs 1: a dense epoch (its own log), the switch, a low-rank epoch, in one
    experiment directory with its own tag; the data and shape files of the demo run are reused. ESPnet's
    --pretrained_model (its --init_param: here the demo model's front end) starts the dense warm-up. The switch's
    mechanics are read from the kept dense files and repeated on a copy of them (what the experiment held between
    the phases); the result is an ordinary low-rank experiment."""
    from espnet_lrsms.asr.build import build_asr_model
    from espnet_lrsms.asr.full_rank_warmup import KEPT_DIR, MARKER, switch_to_lowrank
    from espnet_lrsms.asr.task import LowRankASRTask

    work, _ = librispeech_demo
    init = f"{work}/exp/asr_{TAG}/valid.acc.best.pth:frontend:frontend"
    stdout = run_recipe(
        LIBRI_RECIPE, "LIBRISPEECH", REPO / "demo" / "librispeech", work,
        "--train_set", "train_clean_100", "--valid_set", "dev_clean", "--test_sets", "test_clean",
        "--stage", "11", "--stop_stage", "11", "--warmup_full_rank_epochs", "1",
        "--asr_args", "--max_epoch 2 --num_iters_per_epoch 2", "--pretrained_model", init,
    )
    exp = work / "exp" / f"asr_{TAG}_max_epoch2_num_iters_per_epoch2_warmup_full_rank1"
    kept = exp / KEPT_DIR
    assert (kept / MARKER).is_file() and (exp / "train_full_rank_warmup.log").is_file()
    assert f"initialised from --pretrained_model {init}" in stdout
    assert "--init_param" in (exp / "train_full_rank_warmup.log").read_text()  # the warm-up started from it
    assert "--init_param" not in (exp / "train.log").read_text()  # the low-rank run resumes from the warm-up
    assert "The training was resumed" in (exp / "train.log").read_text()
    assert yaml.safe_load((exp / "config.yaml").read_text())["fold_length"] == [80000, 150]  # ESPnet's
    dense_key, factor = "encoder.encoders.0.feed_forward.w_1.weight", "encoder.encoders.0.feed_forward.w_1.u"

    # the warm-up: dense, one epoch, on the schedule of the whole run (the config's 40 epochs)
    dense = torch.load(kept / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert dense_key in dense["model"] and dense["reporter"]["epoch"] == 1
    steps = dense["schedulers"][0]["last_epoch"]
    assert steps == 2 and dense["schedulers"][0]["total_steps"] == 40 * steps
    assert dense_key in torch.load(kept / "1epoch.pth", weights_only=True)
    with open(kept / "compression.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(0 <= float(r["relative_error"]) < 1 for r in rows)
    assert switch_to_lowrank(exp, exp / "config.yaml") is None  # a re-run does nothing

    # the switch, repeated on the files the warm-up left: a fresh optimizer where the schedule left off
    between = tmp_path / "between_the_phases"
    between.mkdir()
    for name in ("checkpoint.pth", "1epoch.pth"):
        shutil.copy(kept / name, between / name)
    shutil.copy(exp / "config.yaml", between / "config.yaml")
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert switch_to_lowrank(between, exp / "config.yaml") == between / "checkpoint.pth"
    switched = torch.load(between / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert dense_key not in switched["model"] and factor in switched["model"]
    assert switched["optimizers"][0]["state"] == {}
    assert switched["optimizers"][0]["param_groups"][0]["lr"] == dense["optimizers"][0]["param_groups"][0]["lr"]
    assert switched["schedulers"][0]["last_epoch"] == steps
    assert factor in torch.load(between / "1epoch.pth", weights_only=True)
    assert config["encoder_conf"]["lowrank"] is not None

    # the low-rank phase resumed to the planned epochs: an ordinary low-rank experiment
    final = torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert final["reporter"]["epoch"] == 2 and final["schedulers"][0]["last_epoch"] == 2 * steps
    for epoch in (1, 2):
        state = torch.load(exp / f"{epoch}epoch.pth", weights_only=True)
        assert factor in state and dense_key not in state
    for model in ("valid.acc.best.pth", "valid.acc.ave.pth"):  # what stage 12 decodes: low rank
        assert factor in torch.load(exp / model, weights_only=True), model
    model, _ = LowRankASRTask.build_model_from_file(exp / "config.yaml", exp / "valid.acc.ave.pth")  # strict
    assert model.encoder.encoders[0].feed_forward.w_1.u.shape[1] < 64
    meta = build_asr_model(exp / "config.yaml", vocab_size=model.vocab_size, device="meta")  # as count_params does
    assert sum(p.numel() for p in meta.parameters()) == sum(p.numel() for p in model.parameters())


def test_lrs3_recipe_from_mp4_to_scores(tmp_path):
    run_recipe(
        LRS3_RECIPE, "LRS3", REPO / "demo" / "lrs3", tmp_path,
        "--train_set", "train", "--valid_set", "val", "--test_sets", "test",
        "--asr_args", "--max_epoch 2 --num_iters_per_epoch 4", "--stop_stage", "13", "--max_wav_duration", "1.2",
        "--inference_args", "--beam_size 2 --maxlenratio 0.3",  # an 8-step model: stage 13 needs hypotheses, not good ones
    )
    decode = "decode_asr_tiny_beam_size2_maxlenratio0.3_asr_model_valid.acc.best"
    result = tmp_path / "exp" / f"asr_{TAG}_max_epoch2_num_iters_per_epoch4" / decode / "test" / "score_wer" / "result.txt"
    assert "Sum/Avg" in result.read_text()
    # stage 4 left out the training and validation clips of 1.2 s and longer (a third of the demo's training
    # clips), listed with their duration; the unfiltered sets are in dump/raw/org/ (ESPnet's place)
    raw = tmp_path / "dump" / "raw"
    for dset in ("train", "val"):
        kept, original = (len((d / dset / "wav.scp").read_text().splitlines()) for d in (raw, raw / "org"))
        filtered = (raw / dset / "filtered.txt").read_text().splitlines()
        assert kept + len(filtered) == original and (filtered or dset == "val"), dset
        assert all("not below --max_wav_duration 1.2" in line for line in filtered)
    assert not (raw / "org" / "test").exists()
    assert (tmp_path / "data" / "audio" / "train").is_dir()  # decoded from the mp4 files


def test_missing_corpus_root_is_named(tmp_path):
    env = dict(os.environ, LIBRISPEECH=str(tmp_path / "nowhere"))
    result = subprocess.run(
        ["./run.sh", *DEMO_ARGS, "--datadir", str(tmp_path / "data"), "--stop_stage", "1",
         "--train_set", "train_clean_100", "--valid_set", "dev_clean", "--test_sets", "test_clean"],
        cwd=LIBRI_RECIPE, env=env, capture_output=True, text=True,
    )
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert f"local/data.sh: LIBRISPEECH={tmp_path / 'nowhere'}: no such directory" in message  # the recipe's stage 1
    assert "Stage 1: local/data.sh failed (exit 1)" in message


def test_interrupted_training_resumes_to_the_planned_epochs(tone_data, tmp_path):
    from asr_test_data import train_command

    out = tmp_path / "exp"
    cmd = train_command(tone_data, out, "--max_epoch", "3", "--resume", "true", "--batch_size", "2")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (out / "1epoch.pth").exists():
        assert proc.poll() is None and time.time() < deadline, "training ended before its first epoch"
        time.sleep(0.2)
    time.sleep(1.0)  # into the second epoch
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    state = torch.load(out / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert state["reporter"]["epoch"] == 1  # killed mid-epoch 2: only epoch 1 is saved
    first_epoch = (out / "1epoch.pth").stat().st_mtime_ns

    result = subprocess.run(cmd, capture_output=True, text=True)  # the same command again
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(out / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert state["reporter"]["epoch"] == 3
    assert sorted(state["reporter"]["stats"]) == [1, 2, 3]
    assert (out / "1epoch.pth").stat().st_mtime_ns == first_epoch  # epoch 1 was not trained again
    assert (out / "3epoch.pth").is_file()


def test_ddp_workers_register_the_low_rank_classes():
    """ESPnet spawns DDP workers with target=cls.main_worker; unpickling it alone must register."""
    from espnet_lrsms.asr.task import LowRankASRTask

    payload = pickle.dumps(LowRankASRTask.main_worker)
    probe = (
        "import pickle, sys; pickle.loads(sys.stdin.buffer.read()); "
        "from espnet2.tasks.asr import encoder_choices, decoder_choices, frontend_choices; "
        "print('lowrank_conformer' in encoder_choices.classes, 'lowrank_transformer' in decoder_choices.classes, "
        "'resnet1d' in frontend_choices.classes)"
    )
    result = subprocess.run([sys.executable, "-c", probe], input=payload, capture_output=True, check=True)
    assert result.stdout.decode().strip().splitlines()[-1] == "True True True"
