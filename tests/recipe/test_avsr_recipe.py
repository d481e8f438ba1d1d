"""egs2/lrs3/avsr1_lrsms end to end on demo/lrs3 (mp4 → audio + mouth ROIs → train → decode clean and in babble)."""
import json
import os
import re
import subprocess

import numpy as np
import pytest
import soundfile
import yaml

from espnet_lrsms.avsr.noise import snr_db
from espnet_lrsms.scoring.results import read_sum_avg

from avsr_test_data import REPO

pytestmark = pytest.mark.end_to_end  # end to end: slow, deselect with -m "not end_to_end"

RECIPE = REPO / "egs2" / "lrs3" / "avsr1_lrsms"
SNRS = ["-7.5", "-2.5", "2.5", "7.5", "12.5"]
# the overriding --avsr_args / --inference_args below are part of the tags, as in ESPnet
EXP = "avsr_train_avsr_lrsms_tiny_raw_en_bpe30_max_epoch1_num_iters_per_epoch1_batch_bins400000_num_att_plot0"
DECODE = "decode_avsr_tiny_maxlenratio0.3_avsr_model_valid.acc.best"
DEMO_AV_ARGS = [
    "--ngpu", "0", "--nbpe", "30", "--nj", "2", "--inference_nj", "2",
    "--avsr_config", "conf/avsr/demo/train_avsr_lrsms_tiny.yaml",
    "--inference_config", "conf/avsr/demo/decode_avsr_tiny.yaml",
    "--inference_avsr_model", "valid.acc.best.pth",
]


def run_avsr(work, *args):
    env = dict(os.environ, LRS3=str(REPO / "demo" / "lrs3"))
    result = subprocess.run(
        ["./run.sh", *DEMO_AV_ARGS, "--datadir", str(work / "data"), "--expdir", str(work / "exp"), *args],
        cwd=RECIPE, env=env, capture_output=True, text=True,
    )
    return result


@pytest.fixture(scope="module")
def avsr_demo(tmp_path_factory):
    """Every stage once (1-17; those AVSR lacks log a skip): one training step (CPU time), all five SNRs and clean decoded."""
    work = tmp_path_factory.mktemp("avsr_demo")
    result = run_avsr(
        work,
        "--avsr_args", "--max_epoch 1 --num_iters_per_epoch 1 --batch_bins 400000 --num_att_plot 0",
        "--inference_args", "--maxlenratio 0.3",
        "--snrs", " ".join(SNRS), "--skip_packing", "false",  # packing is off by default, as in ESPnet
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work, result.stdout


def scp(path):
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines())


def test_stage1_writes_wav_and_mouth_rois_for_every_clip(avsr_demo):
    work, _ = avsr_demo
    # demo/lrs3: 30 pretrain + 120 trainval clips of 6 speakers, 12 test; ESPnet's 92/8 speaker split puts
    # int(0.92 * 6) = 5 trainval speakers in train and 1 (20 clips) in dev, written to data/lrs3_dev_speakers.txt
    counts = {"train": 130, "dev": 20, "test": 12}
    for dset, count in counts.items():
        wav, video = scp(work / "data" / dset / "wav.scp"), scp(work / "data" / dset / "video.scp")
        assert sorted(wav) == sorted(video) and len(wav) == count
        assert not (work / "data" / dset / "skipped.txt").exists()
    dev_speakers = [line for line in (work / "data" / "lrs3_dev_speakers.txt").read_text().splitlines() if line[0] != "#"]
    assert dev_speakers == ["trspk04engbscot"] and set(scp(work / "data" / "dev" / "utt2spk").values()) == set(dev_speakers)
    assert not set(scp(work / "data" / "train" / "utt2spk").values()) & set(dev_speakers)
    key = sorted(video)[0]
    audio, rate = soundfile.read(wav[key])
    rois = np.load(video[key])
    assert rate == 16000 and rois.dtype == np.uint8 and rois.shape[1:] == (96, 96)
    assert abs(len(audio) / 640 - len(rois)) <= 2.0  # AAC priming adds 1024 samples (1.6 frames) to the audio
    # no --landmarks_dir: the face detector found the demo face in every frame of every clip
    settings = json.loads((work / "data" / "av" / "test" / "roi" / "settings.json").read_text())
    assert settings["method"] == "detect"
    kept = sorted((work / "data" / "av" / "test" / "landmarks" / "test").glob("*/*.npy"))
    assert len(kept) == 12
    for path in kept:
        landmarks = np.load(path)
        assert landmarks.shape[1:] == (68, 2) and not np.isnan(landmarks).any(), path


def test_stages_5_10_11_tokenizer_shapes_and_training(avsr_demo):
    work, _ = avsr_demo
    bpe = work / "data" / "en_token_list" / "bpe_unigram30"
    tokens = (bpe / "tokens.txt").read_text().split()
    # ESPnet's list: every piece of bpe.vocab after <unk>, <s>, </s>; the demo's 11 words are one piece each
    pieces = [line.split("\t")[0] for line in (bpe / "bpe.vocab").read_text().splitlines()[3:]]
    assert tokens == ["<blank>", "<unk>", *pieces, "<sos/eos>"]
    assert {"▁" + w for w in "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE OH".split()} <= set(pieces)
    stats = work / "exp" / "avsr_stats_raw_en_bpe30" / "train"
    speech = scp(stats / "speech_shape")
    video = scp(stats / "video_shape")
    wav = scp(work / "data" / "train" / "wav.scp")
    assert len(speech) == len(video) == 130
    key = sorted(wav)[0]
    assert int(speech[key]) == soundfile.info(wav[key]).frames
    assert video[key] == f"{len(np.load(scp(work / 'data' / 'train' / 'video.scp')[key]))},96,96"
    exp = work / "exp" / EXP
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["video_frontend"] == "resnet2d" and config["model"] == "avsr"
    assert any(path.endswith("video.scp") for path, name, kind in config["train_data_path_and_name_and_type"])
    assert (exp / "1epoch.pth").is_file() and (exp / "valid.acc.best.pth").is_file()
    # trained in babble made of 6 training talkers (never the test set), as the paper trains in babble
    assert (config["noise_scp"], config["noise_apply_prob"], config["noise_db_range"]) == (
        str(work / "data" / "train_noise" / "noise.scp"), 0.85, "-5_20")
    noise = scp(work / "data" / "train_noise" / "noise.scp")
    assert len(noise) == 20 and all(soundfile.info(path).duration == 10.0 for path in noise.values())


def test_noisy_test_sets_have_the_target_snr(avsr_demo):
    work, _ = avsr_demo
    clean = scp(work / "data" / "test" / "wav.scp")
    exact = rescaled = 0
    for snr in SNRS:
        noisy_dir = work / "data" / f"test_babble_snr{snr}"
        noisy = scp(noisy_dir / "wav.scp")
        assert sorted(noisy) == sorted(clean)
        assert (noisy_dir / "video.scp").read_text() == (work / "data" / "test" / "video.scp").read_text()
        for key in sorted(clean):
            speech, _ = soundfile.read(clean[key])
            mixture, _ = soundfile.read(noisy[key])
            peak = np.abs(mixture).max()
            if abs(peak - 0.99) < 2 / 32768:  # would have clipped: speech + noise scaled down as a whole to 0.99
                rescaled += 1
            else:  # written as mixed: the added noise is mixture - speech
                assert snr_db(speech, mixture - speech) == pytest.approx(float(snr), abs=0.02), (snr, key)
                exact += 1
    # the demo's espeak speech is near full scale: every mixture at -7.5 and -2.5 dB is rescaled
    assert exact >= 30 and exact + rescaled == 60


def test_every_condition_is_scored_and_tabled_as_table_iii(avsr_demo):
    work, stdout = avsr_demo
    for n in (2, 3, 6, 7, 8, 9, 15):  # ESPnet's stages that AVSR lacks say so
        assert re.search(rf"Stage {n}(:| skipped)", stdout), n
    assert "Stage 16" not in stdout  # ESPnet 202511 has none
    # stage 4: ESPnet's duration filter (0.1-20 s keeps every demo clip) on train and dev, never on test
    assert "Stage 4: duration filter" in stdout
    for dset in ("train", "dev"):
        for table in ("wav.scp", "video.scp", "text"):
            assert (work / "data" / dset / "org" / table).read_text() == (work / "data" / dset / table).read_text()
    assert not (work / "data" / "test" / "org").exists()
    assert "Stage 13: " in stdout and (work / "exp" / EXP / "run.sh").is_file()
    exp = work / "exp" / EXP
    wers = {}
    for condition in ["clean"] + SNRS:
        name = DECODE if condition == "clean" else f"{DECODE}_snr{condition}"
        result = exp / name / "test" / "score_wer" / "result.txt"
        sentences, words, values = read_sum_avg(result)
        assert (sentences, words) == (12, 37)  # 12 test clips of 2-4 digits
        assert len((exp / name / "test" / "1best_recog" / "text").read_text().splitlines()) == 12
        wers[condition] = values[4]
        # TER in the pieces of the recipe's bpe.model, as the ASR recipe's stage 13
        assert read_sum_avg(exp / name / "test" / "score_ter" / "result.txt")[0] == 12
    results = (exp / "RESULTS.md").read_text()
    assert results.index("### WER") < results.index("### CER") < results.index("### TER")
    assert f"|{DECODE}/test|12|" in results.split("### TER")[1]
    assert results in stdout  # stage 17 prints the table
    assert "|model|set|-7.5 dB|-2.5 dB|2.5 dB|7.5 dB|12.5 dB|clean|" in results
    assert "noise: babble: 6 other utterances of the test set summed (seed 0)" in results
    row = re.search(rf"^\|{EXP} \({re.escape(DECODE)}\)\|test\|(.*)\|$", results, re.M)
    assert row, results
    cells = [float(v) for v in row.group(1).split("|")]
    assert cells == [round(wers[c], 1) for c in SNRS + ["clean"]]
    print("demo WER by SNR:", dict(zip(SNRS + ["clean"], cells)))


def test_stage14_pack_transcribes_a_test_mp4_in_one_call(avsr_demo):
    from espnet_lrsms.avsr.transcriber import MP4Transcriber

    work, stdout = avsr_demo
    pack = work / "exp" / EXP / f"{EXP}_valid.acc.best.zip"  # ESPnet's name
    assert "Stage 14: packing" in stdout and pack.is_file()
    s2t = MP4Transcriber.from_pack(pack, work / "unpacked", beam_size=2, maxlenratio=0.3)
    clip = sorted((REPO / "demo" / "lrs3" / "test").glob("*/*.mp4"))[0]
    hyp = s2t.transcribe(clip)
    assert isinstance(hyp, str)  # mp4 -> audio, face detector, mouth crop -> beam search, in one call
