"""AVSR stage 1 (espnet_lrsms.recipe.avsr_data_prep) on a small LRS3-like corpus with broken clips."""
import re
import shutil
from fractions import Fraction

import numpy as np
import pytest
import soundfile

from espnet_lrsms.avsr.roi import resize_frames
from espnet_lrsms.avsr.video_io import read_video_mp4
from espnet_lrsms.recipe.avsr_data_prep import RoiSettings, prepare_av_set
from espnet_lrsms.recipe.data_prep import DataPrepError

from avsr_test_data import REPO, assert_ramp_at_25_fps, demo_corpora_module, write_ramp_clip

DEMO = REPO / "demo" / "lrs3" / "test"
FS = 16000


def write_audio_only_mp4(path, wave):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=FS)
        stream.layout = "mono"
        pcm = (np.clip(wave, -1, 1) * 32767).astype(np.int16)
        for start in range(0, len(pcm), 1024):
            frame = av.AudioFrame.from_ndarray(pcm[start : start + 1024][None, :], format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = FS, start, Fraction(1, FS)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """test/spk/: 00000-00001 good demo clips, 00002 garbage bytes, 00003 no video stream,
    00004 2.0 s of audio with 0.4 s of video; each with a transcript."""
    root = tmp_path_factory.mktemp("lrs3_bad")
    spk = root / "test" / "spk"
    spk.mkdir(parents=True)
    good = sorted(DEMO.glob("*/*.mp4"))[:2]
    for i, mp4 in enumerate(good):
        shutil.copy(mp4, spk / f"{i:05d}.mp4")
        shutil.copy(mp4.with_suffix(".txt"), spk / f"{i:05d}.txt")
    (spk / "00002.mp4").write_bytes(b"this is not an mp4 file" * 40)
    t = np.arange(2 * FS) / FS
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    write_audio_only_mp4(spk / "00003.mp4", tone)
    frames = np.full((10, 96, 96), 128, dtype=np.uint8)
    demo_corpora_module().write_mp4(spk / "00004.mp4", tone, frames)
    for i in range(2, 5):
        (spk / f"{i:05d}.txt").write_text("Text:  ONE TWO\nConf:  4\n")
    return root


def read_skipped(path):
    return {line.split("\t")[0]: line.split("\t")[1:] for line in path.read_text().splitlines()}


def test_skip_mode_lists_every_broken_clip_with_its_reason(corpus, tmp_path):
    out = prepare_av_set(corpus, "test", tmp_path / "data", RoiSettings(method="as_is"), nj=2, on_error="skip")
    skipped = read_skipped(out / "skipped.txt")
    assert {k: v[0] for k, v in skipped.items()} == {
        "spk_00002": "unreadable",
        "spk_00003": "no_video",
        "spk_00004": "length_mismatch",
    }
    assert str(corpus / "test" / "spk" / "00002.mp4") in skipped["spk_00002"][1]
    # 2 s of audio (+ the AAC encoder's 1024 samples of priming) against 10 video frames
    assert re.search(r"00004\.mp4: audio 2\.0\d s \(5[01] frames of 40 ms\) but video 10 frames \(0\.40 s\); tolerance 3 frames",
                     skipped["spk_00004"][1])
    wav = dict(line.split() for line in (out / "wav.scp").read_text().splitlines())
    video = dict(line.split() for line in (out / "video.scp").read_text().splitlines())
    assert sorted(wav) == sorted(video) == ["spk_00000", "spk_00001"]
    for key in wav:
        audio, rate = soundfile.read(wav[key], dtype="int16")
        rois = np.load(video[key])
        assert rate == FS and rois.dtype == np.uint8 and rois.shape[1:] == (96, 96)
        assert abs(len(audio) // 640 - len(rois)) <= 1  # 25 fps video, 16 kHz audio of the same clip
        mp4 = corpus / "test" / "spk" / f"{key.split('_')[1]}.mp4"
        np.testing.assert_array_equal(rois, resize_frames(read_video_mp4(mp4).astype(np.uint8)))  # as_is: resized only
    frames = dict(line.split() for line in (out / "utt2num_video_frames").read_text().splitlines())
    assert int(frames["spk_00000"]) == len(np.load(video["spk_00000"]))


def test_stop_mode_names_the_file(corpus, tmp_path):
    with pytest.raises(DataPrepError) as err:
        prepare_av_set(corpus, "test", tmp_path / "data", RoiSettings(method="as_is"), nj=1, on_error="stop")
    message = str(err.value)
    assert "3 of 5 clips have problems (length_mismatch: 1, no_video: 1, unreadable: 1)" in message
    assert str(corpus / "test" / "spk" / "00002.mp4") in message
    assert (tmp_path / "data" / "test.failed" / "skipped.txt").is_file()
    assert not (tmp_path / "data" / "test").exists()


def test_landmark_mode_missing_file_and_no_face(corpus, tmp_path):
    marks = tmp_path / "landmarks" / "test" / "spk"
    marks.mkdir(parents=True)
    prepare_av_set(corpus, "test", tmp_path / "ref", RoiSettings(method="as_is"), on_error="skip")
    reference = tmp_path / "ref" / "av" / "test" / "roi" / "spk"
    frames, frames_1 = (len(np.load(reference / f"0000{i}.npy")) for i in (0, 1))
    centred = np.zeros((frames, 68, 2))
    centred[:, 48:68] = (111.5, 111.5)
    centred[:, 48] = (55.5, 111.5)  # mouth corners 112 px apart around the centre of the 224x224 frame
    centred[:, 54] = (167.5, 111.5)
    np.save(marks / "00000.npy", centred)
    np.save(marks / "00001.npy", np.full((frames_1, 68, 2), np.nan))  # no face detected in any frame
    settings = RoiSettings(method="landmarks", landmarks_dir=str(tmp_path / "landmarks"), crop_scale=2.0, smooth_window=1)
    out = prepare_av_set(corpus, "test", tmp_path / "data", settings, nj=1, on_error="skip")
    skipped = read_skipped(out / "skipped.txt")
    assert skipped["spk_00001"][0] == "no_face" and f"00001.npy: no face in any of its {frames_1} frames" in skipped["spk_00001"][1]
    assert skipped["spk_00002"][0] == "unreadable"  # decoding fails before the landmarks are looked at
    assert list((out / "video.scp").read_text().split()[::2]) == ["spk_00000"]
    # mouth width 112 px, crop 224 px centred on the frame's centre: the crop is the whole demo frame
    as_is = np.load(reference / "00000.npy")
    cropped = np.load((out / "video.scp").read_text().split()[1])
    np.testing.assert_array_equal(cropped, as_is)
    no_file = RoiSettings(method="landmarks", landmarks_dir=str(tmp_path / "landmarks"))
    (marks / "00000.npy").unlink()
    with pytest.raises(DataPrepError, match="set test: no usable clip"):  # every clip is broken now
        prepare_av_set(corpus, "test", tmp_path / "data2", no_file, nj=1, on_error="skip")
    reason = read_skipped(tmp_path / "data2" / "test" / "skipped.txt")["spk_00000"]
    assert reason[0] == "no_landmarks" and str(tmp_path / "landmarks" / "test" / "spk" / "00000") in reason[1]


def test_rerun_continues_from_the_per_clip_cache(corpus, tmp_path):
    settings = RoiSettings(method="as_is")
    out = prepare_av_set(corpus, "test", tmp_path / "data", settings, nj=1, on_error="skip")
    cache = tmp_path / "data" / "av" / "test"
    kept = cache / "roi" / "spk" / "00000.npy"
    lost = cache / "roi" / "spk" / "00001.npy"
    stamp = kept.stat().st_mtime_ns
    before = (out / "video.scp").read_text()
    lost.unlink()  # as if interrupted before this clip's crops were written
    out = prepare_av_set(corpus, "test", tmp_path / "data", settings, nj=1, on_error="skip")
    assert kept.stat().st_mtime_ns == stamp  # not decoded again
    assert lost.is_file() and (out / "video.scp").read_text() == before
    # other ROI settings: the cached crops are made again
    out = prepare_av_set(corpus, "test", tmp_path / "data", RoiSettings(method="as_is", size=64), nj=1, on_error="skip")
    assert np.load(kept).shape[1:] == (64, 64)


def test_landmark_mode_without_landmarks_dir_is_refused_with_a_hint(corpus, tmp_path, caplog):
    from espnet_lrsms.bin import prepare_data

    code = prepare_data.main(["lrs3", "--task", "avsr", "--corpus_root", str(corpus), "--sets", "test", "--data_dir",
                              str(tmp_path / "data"), "--roi_method", "landmarks"])
    assert code == 1
    assert "--roi_method landmarks needs --landmarks_dir" in caplog.text and "use --roi_method detect" in caplog.text


@pytest.mark.parametrize("value", [1e9, np.inf])
def test_absurd_landmarks_skip_the_clip_naming_file_and_frame(corpus, tmp_path, value):
    marks = tmp_path / "landmarks" / "test" / "spk"
    marks.mkdir(parents=True)
    frames, frames_1 = (len(read_video_mp4(corpus / "test" / "spk" / f"0000{i}.mp4")) for i in (0, 1))
    absurd = np.full((frames, 68, 2), 100.0)
    absurd[:, 54, 0] = 150.0
    absurd[3, 54] = (value, 100.0)  # frame 3's right mouth corner far outside the 224x224 frame
    np.save(marks / "00000.npy", absurd)
    np.save(marks / "00001.npy", np.full((frames_1, 68, 2), 100.0) + np.arange(68)[None, :, None])
    settings = RoiSettings(method="landmarks", landmarks_dir=str(tmp_path / "landmarks"), smooth_window=1)
    out = prepare_av_set(corpus, "test", tmp_path / "data", settings, nj=1, on_error="skip")
    kind, message = read_skipped(out / "skipped.txt")["spk_00000"]
    assert kind == "bad_landmarks"
    assert message.startswith(f"{marks / '00000.npy'}: frame 3, point 54: ({value:g}, 100)")
    assert "224x224" in message
    assert (out / "video.scp").read_text().split()[0] == "spk_00001"


def test_extra_training_corpora_are_merged_and_brought_to_25_fps(corpus, tmp_path):
    """An extra corpus (VoxCeleb2-like: <speaker>/<video>/<clip>.mp4) with a 30 fps clip, one transcript as
    a .txt, one in a Kaldi text file, joins the set; the 30 fps video is resampled, not skipped."""
    extra = tmp_path / "vox"
    write_ramp_clip(extra / "id001" / "vidA" / "00001.mp4", fps=30)
    write_ramp_clip(extra / "id001" / "vidA" / "00002.mp4", fps=25)
    (extra / "id001" / "vidA" / "00001.txt").write_text("HELLO {LG} THERE\n")  # a plain first line
    (extra / "text").write_text("id001_vidA_00002 AN AUTOMATIC TRANSCRIPT\n")
    out = prepare_av_set(corpus, "test", tmp_path / "data", RoiSettings(method="as_is"), nj=1, on_error="skip",
                         extra=[extra])
    text = dict(line.split(maxsplit=1) for line in (out / "text").read_text().splitlines())
    assert text["vox_id001_vidA_00001"] == "HELLO THERE" and text["vox_id001_vidA_00002"] == "AN AUTOMATIC TRANSCRIPT"
    assert {"spk_00000", "spk_00001"} <= set(text)  # the set's own clips stay
    utt2spk = dict(line.split() for line in (out / "utt2spk").read_text().splitlines())
    assert utt2spk["vox_id001_vidA_00001"] == "vox_id001"
    video = dict(line.split() for line in (out / "video.scp").read_text().splitlines())
    assert_ramp_at_25_fps(np.load(video["vox_id001_vidA_00001"]), source_fps=30)
    assert not (out / "skipped.txt").read_text().count("vox_")
    with pytest.raises(DataPrepError, match="no such directory"):
        prepare_av_set(corpus, "test", tmp_path / "data2", RoiSettings(method="as_is"), extra=[tmp_path / "none"])


def test_lrs3_clips_at_another_frame_rate_are_brought_to_25_fps(tmp_path, caplog):
    """An LRS3 clip (test/<speaker>/<clip>.mp4 + .txt) at 30 fps is resampled as the extra corpora's are, not
    refused; the log says how many clips of the set were resampled and from which rate, also from the cache."""
    corpus = tmp_path / "lrs3"
    for clip, fps in (("00000", 30), ("00001", 25)):
        write_ramp_clip(corpus / "test" / "spk" / f"{clip}.mp4", fps)
        (corpus / "test" / "spk" / f"{clip}.txt").write_text("Text:  ONE TWO\nConf:  4\n")
    for run in ("decoded", "cached"):
        caplog.clear()
        with caplog.at_level("INFO", logger="espnet_lrsms.recipe.avsr_data_prep"):
            out = prepare_av_set(corpus, "test", tmp_path / "data", RoiSettings(method="as_is"), nj=1, on_error="stop")
        assert "set test: 1 of 2 clips resampled to 25 fps (1 from 30 fps)" in caplog.text, run
        video = dict(line.split() for line in (out / "video.scp").read_text().splitlines())
        assert sorted(video) == ["spk_00000", "spk_00001"]  # kept (on_error="stop": any problem would raise)
        assert_ramp_at_25_fps(np.load(video["spk_00000"]), source_fps=30)
        frames = dict(line.split() for line in (out / "utt2num_video_frames").read_text().splitlines())
        assert frames == {"spk_00000": "30", "spk_00001": "30"}


def test_stage_1_parses_and_prepares_audio_without_torch_or_espnet():
    """The stage-1 command's options (the ROI settings included) come from a module that loads neither torch nor
    ESPnet, so an audio-only corpus is prepared without paying for them; its crop size is the crops' own."""
    import subprocess
    import sys

    from espnet_lrsms.avsr.roi import ROI_SIZE
    from espnet_lrsms.recipe.roi_settings import RoiSettings

    assert RoiSettings().size == ROI_SIZE
    script = ("import sys, espnet_lrsms.bin.prepare_data\n"
              "print(sorted(m for m in ('torch', 'espnet2') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.split("\n")[-2] == "[]", result.stdout + result.stderr[-2000:]
