"""Stage 2 perturbs every corpus stage 3 reads — wav.scp of commands, ark offsets and files, with or without a
segments file — ESPnet's way (perturb_data_dir_speed.sh): ids sp<f>-..., speakers and recordings too, segments
times and durations divided by f; stage 3 then formats the perturbed set."""
import logging
import shlex

import kaldiio
import numpy as np
import pytest
import soundfile

from espnet_lrsms.bin.speed_perturb import main
from espnet_lrsms.fileio import read_kaldi_table
from espnet_lrsms.recipe.format_audio import format_data_dir

FS = 8000


def _tone(seconds, freq):
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * FS)) / FS)).astype(np.float32)


def _peak_hz(wave):
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return np.argmax(spectrum) * FS / wave.size


def _write(path, table):
    path.write_text("".join(f"{k} {v}\n" for k, v in table.items()))


def _segmented_set(root):
    """One 2.5 s recording (300 Hz, then 600 Hz from 1.25 s) read through a command, cut by segments."""
    recording = np.concatenate([_tone(1.25, 300.0), _tone(1.25, 600.0)])
    soundfile.write(root / "rec1.wav", recording, FS, subtype="PCM_16")
    data = root / "data" / "train"
    data.mkdir(parents=True)
    _write(data / "wav.scp", {"rec1": f"cat {shlex.quote(str(root / 'rec1.wav'))} |"})
    _write(data / "segments", {"spkA-a": "rec1 0.0 1.0", "spkA-b": "rec1 1.25 -1", "spkB-c": "rec1 1.0 1.005"})
    _write(data / "text", {"spkA-a": "ONE", "spkA-b": "TWO THREE", "spkB-c": "FOUR"})
    _write(data / "utt2spk", {"spkA-a": "spkA", "spkA-b": "spkA", "spkB-c": "spkB"})
    _write(data / "reco2dur", {"rec1": "2.5"})
    _write(data / "utt2dur", {"spkA-a": "1.0", "spkA-b": "1.25", "spkB-c": "0.005"})
    _write(data / "spk2gender", {"spkA": "f", "spkB": "m"})
    return data, recording


def test_commands_and_segments_are_perturbed_as_espnet_names_them(tmp_path):
    data, recording = _segmented_set(tmp_path)
    out = tmp_path / "data" / "train_sp"
    assert main(["--data_dir", str(data), "--out_dir", str(out), "--factors", "0.9", "1.0", "1.1", "--nj", "2"]) == 0
    wav = read_kaldi_table(out / "wav.scp")
    assert sorted(wav) == ["rec1", "sp0.9-rec1", "sp1.1-rec1"]  # the recordings, ESPnet's reco_map
    assert wav["rec1"] == read_kaldi_table(data / "wav.scp")["rec1"]  # factor 1: the command as it was
    assert wav["sp0.9-rec1"] == str(tmp_path / "data" / "train_sp.audio" / "sp0.9" / "rec1.flac")
    assert soundfile.info(wav["sp0.9-rec1"]).frames == 22223 and soundfile.info(wav["sp0.9-rec1"]).samplerate == FS
    assert soundfile.info(wav["sp1.1-rec1"]).frames == 18182  # ceil(20000 / 1.1)
    # segments: ids and recordings prefixed, times / f at two decimals; -1 stays; 1.0-1.005 s is too short once
    # perturbed (Kaldi's e > s + 0.01) and left out, kept as it was at factor 1
    assert (out / "segments").read_text() == (
        "sp0.9-spkA-a sp0.9-rec1 0.00 1.11\n"
        "sp0.9-spkA-b sp0.9-rec1 1.39 -1\n"
        "sp1.1-spkA-a sp1.1-rec1 0.00 0.91\n"
        "sp1.1-spkA-b sp1.1-rec1 1.14 -1\n"
        "spkA-a rec1 0.0 1.0\n"
        "spkA-b rec1 1.25 -1\n"
        "spkB-c rec1 1.0 1.005\n"
    )
    assert read_kaldi_table(out / "text") == {
        "sp0.9-spkA-a": "ONE", "sp0.9-spkA-b": "TWO THREE", "sp1.1-spkA-a": "ONE", "sp1.1-spkA-b": "TWO THREE",
        "spkA-a": "ONE", "spkA-b": "TWO THREE", "spkB-c": "FOUR"}
    assert read_kaldi_table(out / "utt2spk")["sp0.9-spkA-b"] == "sp0.9-spkA"
    assert (out / "spk2utt").read_text().splitlines()[:2] == ["sp0.9-spkA sp0.9-spkA-a sp0.9-spkA-b",
                                                              "sp1.1-spkA sp1.1-spkA-a sp1.1-spkA-b"]
    assert read_kaldi_table(out / "utt2uniq")["sp1.1-spkA-b"] == "spkA-b"
    assert read_kaldi_table(out / "spk2gender") == {"sp0.9-spkA": "f", "sp1.1-spkA": "f", "spkA": "f", "spkB": "m"}
    assert read_kaldi_table(out / "reco2dur") == {"rec1": "2.5", "sp0.9-rec1": "2.77778", "sp1.1-rec1": "2.27273"}
    assert read_kaldi_table(out / "utt2dur")["sp0.9-spkA-b"] == "1.38889"

    # stage 3 formats the perturbed set: each segment cut from its perturbed recording
    dump = tmp_path / "dump" / "raw" / "org" / "train_sp"
    assert format_data_dir(out, dump, fs="8k", audio_format="wav", nj=2) == (7, 7)
    lengths = {k: int(v) for k, v in read_kaldi_table(dump / "utt2num_samples").items()}
    assert lengths["sp0.9-spkA-a"] == 8880 and lengths["sp0.9-spkA-b"] == 22223 - 11120  # 0-1.11 s; 1.39 s-end
    assert lengths["spkA-a"] == 8000 and lengths["spkB-c"] == 40
    scp = read_kaldi_table(dump / "wav.scp")
    slow_a, _ = soundfile.read(scp["sp0.9-spkA-a"], dtype="float32")
    slow_b, _ = soundfile.read(scp["sp0.9-spkA-b"], dtype="float32")
    assert _peak_hz(slow_a) == pytest.approx(270.0, abs=3) and _peak_hz(slow_b) == pytest.approx(540.0, abs=3)
    original, _ = soundfile.read(scp["spkA-a"], dtype="float32")
    assert np.max(np.abs(original - recording[:8000])) < 1e-3


def test_commands_and_arks_without_segments(tmp_path):
    soundfile.write(tmp_path / "u1.wav", _tone(0.5, 400.0), FS, subtype="PCM_16")
    kaldiio.save_ark(str(tmp_path / "a.ark"), {"u2": (FS, (_tone(0.75, 400.0) * 32767).astype(np.int16))},
                     scp=str(tmp_path / "a.scp"))
    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    _write(data / "wav.scp", {"s1-u1": f"cat {tmp_path / 'u1.wav'} |", "s2-u2": (tmp_path / "a.scp").read_text().split()[1]})
    _write(data / "text", {"s1-u1": "A", "s2-u2": "B"})
    _write(data / "utt2spk", {"s1-u1": "s1", "s2-u2": "s2"})
    out = tmp_path / "data" / "train_sp"
    assert main(["--data_dir", str(data), "--out_dir", str(out), "--factors", "0.90", "1.0"]) == 0
    wav = read_kaldi_table(out / "wav.scp")
    assert sorted(wav) == ["s1-u1", "s2-u2", "sp0.90-s1-u1", "sp0.90-s2-u2"]  # the factor as written, as ESPnet's
    assert soundfile.info(wav["sp0.90-s1-u1"]).frames == 4445 and soundfile.info(wav["sp0.90-s2-u2"]).frames == 6667
    assert not (out / "segments").exists()
    assert read_kaldi_table(out / "utt2uniq") == {"s1-u1": "s1-u1", "s2-u2": "s2-u2", "sp0.90-s1-u1": "s1-u1",
                                                  "sp0.90-s2-u2": "s2-u2"}


def test_a_failing_command_is_named_or_skipped(tmp_path, caplog):
    data, _ = _segmented_set(tmp_path)
    _write(data / "wav.scp", {"rec1": "false |"})
    out = tmp_path / "data" / "train_sp"
    with caplog.at_level(logging.INFO):
        assert main(["--data_dir", str(data), "--out_dir", str(out), "--factors", "0.9", "1.0"]) == 1
    assert f"{data / 'wav.scp'}:1: rec1: unreadable (false |): OSError: the command 'false' exited with 1" in caplog.text
    assert not out.exists()
    assert main(["--data_dir", str(data), "--out_dir", str(out), "--factors", "0.9", "1.0", "--on_error", "skip"]) == 0
    assert sorted(read_kaldi_table(out / "wav.scp")) == ["rec1"]  # stage 3 names or skips it, by its --on_error
    assert "the perturbed copies of 1 recording(s) left out (--on_error skip)" in caplog.text


def test_a_segment_without_a_transcript_is_named(tmp_path, caplog):
    data, _ = _segmented_set(tmp_path)
    _write(data / "text", {"spkA-a": "ONE", "spkA-b": "TWO THREE"})
    with caplog.at_level(logging.ERROR):
        assert main(["--data_dir", str(data), "--out_dir", str(tmp_path / "sp"), "--factors", "0.9"]) == 1
    assert f"{data / 'text'}: no line for 1 utterance(s) of {data / 'segments'}, e.g. spkB-c" in caplog.text
