"""Training in babble (espnet_lrsms.bin.avsr_make_noise_scp + ESPnet's --noise_scp), as the paper trains its AVSR models."""
import json

import numpy as np
import pytest
import soundfile

from espnet_lrsms.avsr.noise import snr_db
from espnet_lrsms.bin import avsr_make_noise_scp

FS = 16000


@pytest.fixture(scope="module")
def train_scp(tmp_path_factory):
    """Eight 1 s 'utterances': tones of different pitch with a syllable-like envelope."""
    root = tmp_path_factory.mktemp("train")
    t = np.arange(FS) / FS
    lines = []
    for i in range(8):
        wave = 0.5 * np.sin(2 * np.pi * (150 + 40 * i) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
        path = root / f"utt{i}.wav"
        soundfile.write(str(path), wave, FS, subtype="PCM_16")
        lines.append(f"utt{i} {path}\n")
    (root / "wav.scp").write_text("".join(lines))
    return root / "wav.scp"


def test_babble_files_are_sums_of_training_talkers(train_scp, tmp_path):
    out = tmp_path / "babble"
    args = ["--out_dir", str(out), "--babble_scp", str(train_scp), "--num_files", "3", "--seconds", "2",
            "--babble_speakers", "4", "--seed", "1"]
    assert avsr_make_noise_scp.main(args) == 0
    entries = [line.split() for line in (out / "noise.scp").read_text().splitlines()]
    assert [key for key, _ in entries] == ["babble_000", "babble_001", "babble_002"]
    for _, path in entries:
        wave, rate = soundfile.read(path)
        assert rate == FS and wave.shape == (2 * FS,)
        assert np.abs(wave).max() == pytest.approx(0.9, abs=1e-3)
        spectrum = np.abs(np.fft.rfft(wave))  # 2 s: 0.5 Hz bins
        talker_power = np.array([spectrum[2 * (150 + 40 * i)] for i in range(8)])
        assert (talker_power > 0.05 * talker_power.max()).sum() == 4  # exactly 4 of the 8 talkers, each audible
    stamp = (out / "noise.scp").stat().st_mtime_ns
    assert avsr_make_noise_scp.main(args) == 0  # same settings: nothing redone
    assert (out / "noise.scp").stat().st_mtime_ns == stamp
    assert json.loads((out / "noise.json").read_text())["babble_speakers"] == "4"


def test_a_recording_is_checked_and_listed(tmp_path):
    good, stereo = tmp_path / "babble.wav", tmp_path / "stereo.wav"
    soundfile.write(str(good), np.zeros(FS), FS)
    soundfile.write(str(stereo), np.zeros((FS, 2)), FS)
    assert avsr_make_noise_scp.main(["--out_dir", str(tmp_path / "a"), "--noise", str(good)]) == 0
    assert (tmp_path / "a" / "noise.scp").read_text() == f"noise {good.resolve()}\n"
    assert avsr_make_noise_scp.main(["--out_dir", str(tmp_path / "b"), "--noise", str(stereo)]) == 1
    assert not (tmp_path / "b" / "noise.scp").exists()
    assert avsr_make_noise_scp.main(["--out_dir", str(tmp_path / "c"), "--babble_scp", str(tmp_path / "none.scp")]) == 1


def test_espnet_preprocessor_adds_it_at_the_drawn_snr_and_leaves_the_video(train_scp, tmp_path):
    from espnet2.train.preprocessor import CommonPreprocessor

    out = tmp_path / "babble"
    assert avsr_make_noise_scp.main(["--out_dir", str(out), "--babble_scp", str(train_scp), "--num_files", "2",
                                "--seconds", "3"]) == 0
    (tmp_path / "tokens.txt").write_text("<blank>\n<unk>\nO\nN\nE\n<sos/eos>\n")
    pre = CommonPreprocessor(train=True, token_type="char", token_list=str(tmp_path / "tokens.txt"),
                             noise_scp=str(out / "noise.scp"), noise_apply_prob=1.0, noise_db_range="10_10")
    rng = np.random.default_rng(0)
    speech = (0.3 * np.sin(2 * np.pi * 220 * np.arange(FS) / FS)).astype(np.float32)
    video = rng.integers(0, 256, (25, 96, 96)).astype(np.float32)
    data = pre("utt", {"speech": speech.copy(), "video": video.copy(), "text": "ONE"})
    assert data["video"] is not None and np.array_equal(data["video"], video)
    noisy = np.asarray(data["speech"]).reshape(-1)
    assert noisy.shape == speech.shape
    assert snr_db(speech, noisy - speech) == pytest.approx(10.0, abs=0.1)
