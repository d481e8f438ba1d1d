"""Stage 3: a ``segments`` end time of -1 cuts to the end of the recording (Kaldi's extract-segments, kaldiio)."""
import numpy as np
import pytest
import soundfile

from espnet_lrsms.recipe.data_prep import DataPrepError
from espnet_lrsms.recipe.format_audio import format_data_dir


def _table(path):
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines())


def test_end_minus_one_reads_to_the_end_of_the_recording(tmp_path):
    rate = 8000
    recording = np.sin(2 * np.pi * 300 * np.arange(int(2.5 * rate)) / rate).astype(np.float32) * 0.5
    soundfile.write(tmp_path / "long.wav", recording, rate, subtype="FLOAT")
    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text(f"rec1 cat {tmp_path / 'long.wav'} |\n")
    (data / "segments").write_text("rec1-a rec1 0.0 1.0\nrec1-b rec1 1.25 -1\nrec1-c rec1 0 -1.0\n")
    (data / "text").write_text("rec1-a x\nrec1-b y\nrec1-c z\n")
    out = tmp_path / "dump" / "train"
    assert format_data_dir(data, out, fs="8k", audio_format="wav") == (3, 3)
    assert _table(out / "utt2num_samples") == {"rec1-a": "8000", "rec1-b": "10000", "rec1-c": "20000"}
    tail, _ = soundfile.read(_table(out / "wav.scp")["rec1-b"], dtype="float32")
    assert np.max(np.abs(tail - recording[10000:])) < 1e-3  # 1.25 s to the end (2.5 s): 1.25 s of samples


def test_other_negative_ends_and_starts_past_the_end_are_still_named(tmp_path):
    soundfile.write(tmp_path / "rec.wav", np.zeros(8000, dtype=np.float32), 8000, subtype="PCM_16")
    data = tmp_path / "data" / "dev"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text(f"rec {tmp_path / 'rec.wav'}\n")
    (data / "text").write_text("s1 a\ns2 b\n")
    (data / "segments").write_text("s1 rec 0.0 0.5\ns2 rec 0.2 -2\n")
    with pytest.raises(DataPrepError, match=r"segments:2: s2: need 0 <= start < end \(seconds; end -1: to the end"):
        format_data_dir(data, tmp_path / "out")
    (data / "segments").write_text("s1 rec 0.0 0.5\ns2 rec -0.5 -1\n")
    with pytest.raises(DataPrepError, match=r"segments:2: s2: need 0 <= start \(seconds\), got -0.5"):
        format_data_dir(data, tmp_path / "out")
    (data / "segments").write_text("s1 rec 0.0 0.5\ns2 rec 3.0 -1\n")
    with pytest.raises(DataPrepError, match=r"segments:2: s2: 3-end s lies outside recording rec \(1.000 s\)"):
        format_data_dir(data, tmp_path / "out")
