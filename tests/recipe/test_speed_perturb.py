"""Stage 2: speed perturbation (ESPnet's <set>_sp naming; lengths L/f; pitch scaled by f; resumable)."""
import numpy as np
import pytest
import soundfile

from espnet_lrsms.bin.speed_perturb import main
from espnet_lrsms.fileio import read_kaldi_table

FS = 16000


def _data_dir(root, channels=1):
    audio = root / "audio"
    audio.mkdir(parents=True)
    t = np.arange(8000) / FS
    wav, text, utt2spk = {}, {}, {}
    for uttid, speaker, freq in (("spk1-u1", "spk1", 440.0), ("spk2-u2", "spk2", 1000.0)):
        wave = 0.5 * np.sin(2 * np.pi * freq * t)
        soundfile.write(audio / f"{uttid}.flac", wave if channels == 1 else np.stack([wave] * channels, 1), FS)
        wav[uttid], text[uttid], utt2spk[uttid] = str(audio / f"{uttid}.flac"), f"WORDS OF {uttid.upper()}", speaker
    data = root / "data" / "train"
    data.mkdir(parents=True)
    for name, table in (("wav.scp", wav), ("text", text), ("utt2spk", utt2spk)):
        (data / name).write_text("".join(f"{k} {v}\n" for k, v in table.items()))
    return data


def _peak_hz(path):
    wave, fs = soundfile.read(path)
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return np.argmax(spectrum) * fs / wave.size


def test_speed_perturbed_set_as_espnet_names_it(tmp_path):
    data = _data_dir(tmp_path)
    out = tmp_path / "data" / "train_sp"
    assert main(["--data_dir", str(data), "--out_dir", str(out), "--factors", "0.9", "1.0", "1.1", "--nj", "2"]) == 0
    wav = read_kaldi_table(out / "wav.scp")
    assert sorted(wav) == ["sp0.9-spk1-u1", "sp0.9-spk2-u2", "sp1.1-spk1-u1", "sp1.1-spk2-u2", "spk1-u1", "spk2-u2"]
    assert read_kaldi_table(out / "utt2spk")["sp1.1-spk2-u2"] == "sp1.1-spk2"
    assert read_kaldi_table(out / "text")["sp0.9-spk1-u1"] == "WORDS OF SPK1-U1"
    assert (out / "spk2utt").read_text().splitlines()[0] == "sp0.9-spk1 sp0.9-spk1-u1"
    assert wav["spk1-u1"] == str(tmp_path / "audio" / "spk1-u1.flac")  # factor 1: the original file
    # length L/f (8000 samples: 8889 at 0.9, 7273 at 1.1); pitch times f, as sox's speed effect
    assert soundfile.info(wav["sp0.9-spk1-u1"]).frames == 8889
    assert soundfile.info(wav["sp1.1-spk1-u1"]).frames == 7273
    assert _peak_hz(wav["sp0.9-spk2-u2"]) == pytest.approx(900.0, abs=3)
    assert _peak_hz(wav["sp1.1-spk1-u1"]) == pytest.approx(484.0, abs=3)
    assert wav["sp1.1-spk1-u1"].startswith(str(tmp_path / "data" / "train_sp.audio" / "sp1.1"))

    # a re-run keeps the finished files and rewrites the same directory
    mtime = (tmp_path / "data" / "train_sp.audio" / "sp0.9" / "spk1-u1.flac").stat().st_mtime_ns
    assert main(["--data_dir", str(data), "--out_dir", str(out), "--factors", "0.9", "1.0", "1.1"]) == 0
    assert (tmp_path / "data" / "train_sp.audio" / "sp0.9" / "spk1-u1.flac").stat().st_mtime_ns == mtime
    assert read_kaldi_table(out / "wav.scp") == wav


def test_bad_input_is_named(tmp_path, caplog):
    data = _data_dir(tmp_path, channels=2)
    out = tmp_path / "data" / "train_sp"
    assert main(["--data_dir", str(data), "--out_dir", str(out), "--factors", "0.9", "1.0"]) == 1
    assert "wav.scp:1: spk1-u1: expected mono audio, got 2 channels (" in caplog.text
    assert not out.exists()
    (data / "text").unlink()
    assert main(["--data_dir", str(data), "--out_dir", str(out), "--factors", "0.9"]) == 1
    assert f"{data / 'text'}: no such file" in caplog.text
