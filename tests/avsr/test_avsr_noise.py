"""Noise at a target SNR (Table III's −7.5 … 12.5 dB): the function, babble, and the mix_noise command."""
import numpy as np
import pytest
import soundfile

from espnet_lrsms.avsr.noise import loop_to_length, make_babble, mix_at_snr, non_silent, snr_db
from espnet_lrsms.bin import avsr_mix_noise

SNRS = (-7.5, -2.5, 2.5, 7.5, 12.5)
FS = 16000


def speech_like(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2  # syllable-rate loudness changes
    return 0.3 * envelope * np.sin(2 * np.pi * (150 + 50 * rng.random()) * t) + 0.01 * rng.standard_normal(t.size)


@pytest.mark.parametrize("snr", SNRS)
def test_mix_hits_the_target_snr_with_a_looped_noise(snr):
    speech = speech_like(2.0, 0)
    noise = np.random.default_rng(1).standard_normal(5000)  # shorter than the speech: looped
    mixture = mix_at_snr(speech, noise, snr, rng=np.random.default_rng(2))
    assert mixture.shape == speech.shape
    assert abs(snr_db(speech, mixture - speech) - snr) < 0.5
    assert abs(snr_db(speech, mixture - speech) - snr) < 1e-9  # exact up to rounding


@pytest.mark.parametrize("snr", SNRS)
def test_mix_hits_the_target_snr_with_babble(snr):
    speech = speech_like(1.5, 0)
    talkers = [speech_like(s, seed) * (seed + 1) for seed, s in enumerate((0.7, 1.1, 2.0, 0.9))]
    babble = make_babble(talkers, speech.size, np.random.default_rng(3))
    mixture = mix_at_snr(speech, babble, snr, offset=0)
    assert abs(snr_db(speech, mixture - speech) - snr) < 0.5


def test_noise_offset_is_seeded_and_wraps():
    noise = np.arange(10.0)
    assert loop_to_length(noise, 13, offset=7).tolist() == [7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    speech = speech_like(0.5, 0)
    noise = np.random.default_rng(0).standard_normal(3000)
    first = mix_at_snr(speech, noise, 0.0, rng=np.random.default_rng(7))
    again = mix_at_snr(speech, noise, 0.0, rng=np.random.default_rng(7))
    other = mix_at_snr(speech, noise, 0.0, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    with pytest.raises(ValueError, match="silent"):
        mix_at_snr(np.zeros(100), noise, 0.0, offset=0)


def _data_dir(root, count=5, scale=0.1):
    root.mkdir(parents=True)
    lines = []
    for i in range(count):
        path = root / f"u{i}.wav"
        soundfile.write(path, scale * speech_like(0.6 + 0.1 * i, i), FS, subtype="PCM_16")
        lines.append(f"u{i} {path}\n")
    (root / "wav.scp").write_text("".join(lines))
    (root / "text").write_text("".join(f"u{i} hello\n" for i in range(count)))
    (root / "video.scp").write_text("".join(f"u{i} /v/u{i}.npy\n" for i in range(count)))
    return root


@pytest.mark.parametrize("noise_kind", ["file", "babble"])
def test_mix_noise_command_writes_a_data_dir_at_the_snr(tmp_path, noise_kind):
    data = _data_dir(tmp_path / "test")
    extra = ["--babble_speakers", "3"]
    if noise_kind == "file":
        soundfile.write(tmp_path / "noise.wav", 0.05 * np.random.default_rng(5).standard_normal(4000), FS)
        extra = ["--noise", str(tmp_path / "noise.wav")]
    for snr in SNRS:
        out = tmp_path / f"test_{noise_kind}_{snr}"
        assert avsr_mix_noise.main(["--data_dir", str(data), "--output_dir", str(out), "--snr", str(snr), *extra]) == 0
        assert (out / "text").read_text() == (data / "text").read_text()
        assert (out / "video.scp").read_text() == (data / "video.scp").read_text()
        for line in (out / "wav.scp").read_text().splitlines():
            uid, path = line.split()
            clean, _ = soundfile.read(data / f"{uid}.wav")
            noisy, rate = soundfile.read(path)
            assert rate == FS and noisy.shape == clean.shape
            assert np.max(np.abs(noisy)) < 0.98  # quiet enough: not rescaled against clipping
            assert abs(snr_db(clean, noisy - clean) - snr) < 0.5, (uid, snr)
    again = tmp_path / "again"
    avsr_mix_noise.main(["--data_dir", str(data), "--output_dir", str(again), "--snr", "2.5", *extra])
    first = soundfile.read(tmp_path / f"test_{noise_kind}_2.5" / "wav" / "u0.wav")[0]
    np.testing.assert_array_equal(soundfile.read(again / "wav" / "u0.wav")[0], first)  # seeded


def test_mix_noise_command_scales_a_clipping_mixture_as_a_whole(tmp_path):
    data = _data_dir(tmp_path / "loud", count=2, scale=3.0)  # peaks near 0.9: -7.5 dB would clip
    soundfile.write(tmp_path / "noise.wav", 0.5 * np.random.default_rng(5).standard_normal(8000), FS)
    out = tmp_path / "out"
    avsr_mix_noise.main(["--data_dir", str(data), "--output_dir", str(out), "--snr", "-7.5", "--noise", str(tmp_path / "noise.wav")])
    clean, _ = soundfile.read(data / "u0.wav")
    noisy, _ = soundfile.read(out / "wav" / "u0.wav")
    assert 0.98 < np.max(np.abs(noisy)) <= 0.99
    gain = np.dot(noisy, clean) / np.dot(clean, clean)  # white noise is uncorrelated with the speech
    assert gain < 0.9
    assert abs(snr_db(clean, noisy / gain - clean) - (-7.5)) < 0.5


def test_mix_noise_command_names_missing_inputs(tmp_path, caplog):
    assert avsr_mix_noise.main(["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "o"), "--snr", "0"]) == 1
    assert "wav.scp: no such file" in caplog.text
    data = _data_dir(tmp_path / "d", count=3)
    assert avsr_mix_noise.main(["--data_dir", str(data), "--output_dir", str(tmp_path / "o"), "--snr", "0",
                           "--babble_speakers", "3"]) == 1
    assert "too few for 3 babble talkers" in caplog.text


def test_one_snr_definition_for_training_and_test_on_a_clip_with_silence(tmp_path):
    """ESPnet's preprocessor (training noise, --noise_db_range) and mix_at_snr (the test sweep) make the
    same mixture of a clip that is 25 % silence: speech power over its non-silent samples for both."""
    from espnet2.train.preprocessor import CommonPreprocessor, detect_non_silence

    speech = np.concatenate([speech_like(1.5, 3), np.zeros(FS // 2)])  # 2 s, the last 0.5 s silent
    noise = np.random.default_rng(4).standard_normal(speech.size) * 0.1
    soundfile.write(tmp_path / "noise.wav", noise, FS, subtype="FLOAT")
    noise = soundfile.read(tmp_path / "noise.wav")[0]  # as ESPnet reads it
    (tmp_path / "noise.scp").write_text(f"n1 {tmp_path / 'noise.wav'}\n")
    pre = CommonPreprocessor(train=True, noise_scp=str(tmp_path / "noise.scp"), noise_apply_prob=1.0,
                             noise_db_range="5")
    power = (speech[None][detect_non_silence(speech[None])] ** 2).mean()  # as its __call__ measures it
    trained, _ = pre._add_noise(speech[None], power, pre.noises, 5.0, 5.0)
    tested = mix_at_snr(speech, noise, 5.0, offset=0)
    np.testing.assert_allclose(tested, trained[0], rtol=0, atol=1e-12)
    assert snr_db(speech, tested - speech) == pytest.approx(5.0, abs=1e-9)
    whole = 10 * np.log10(np.mean(speech ** 2) / np.mean((tested - speech) ** 2))
    assert whole == pytest.approx(5.0 + 10 * np.log10(0.75), abs=0.05)  # what whole-utterance power would say
    # noise.non_silent is ESPnet's detect_non_silence (reimplemented: that module is slow to import)
    rng = np.random.default_rng(5)
    for signal in (speech, speech[:1000], np.zeros(3000), speech[: 16000 + 777] * rng.random(16777)):
        np.testing.assert_array_equal(non_silent(signal), detect_non_silence(signal[None])[0])
