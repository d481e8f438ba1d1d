"""Stage 3: data/<set> -> dump/raw/<set> with real audio files at --fs (espnet_lrsms.bin.format_audio)."""
import shlex
import sys

import kaldiio
import numpy as np
import pytest
import soundfile

from espnet_lrsms.bin.filter_durations import main as filter_main
from espnet_lrsms.bin.format_audio import main
from espnet_lrsms.recipe.data_prep import DataPrepError
from espnet_lrsms.recipe.format_audio import format_data_dir, parse_fs


def _sine(seconds, rate, freq=440.0, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _data_dir(root, entries, texts=None):
    """data/<set> with wav.scp ``entries`` ({key: value}) and a text line per key (or ``texts``)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in entries.items()))
    texts = texts or {k: "a b" for k in entries}
    (root / "text").write_text("".join(f"{k} {v}\n" for k, v in texts.items()))
    (root / "utt2spk").write_text("".join(f"{k} spk{k[-1]}\n" for k in texts))
    return root


def _table(path):
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines())


def test_pipes_arks_and_plain_files_become_files_at_fs(tmp_path):
    wave = _sine(0.5, 16000)
    plain, piped = tmp_path / "plain.flac", tmp_path / "piped.wav"
    soundfile.write(plain, wave, 16000, subtype="PCM_16")
    soundfile.write(piped, wave, 16000, subtype="PCM_16")
    ark = tmp_path / "audio.ark"
    kaldiio.save_ark(str(ark), {"u3": (16000, (wave * 32767).astype(np.int16))}, scp=str(tmp_path / "ark.scp"))
    ark_entry = (tmp_path / "ark.scp").read_text().split()[1]  # <ark>:<offset>
    python_pipe = f"{shlex.quote(sys.executable)} -c 'import sys; sys.stdout.buffer.write(open(sys.argv[1], \"rb\").read())' {shlex.quote(str(piped))} |"
    data = _data_dir(tmp_path / "data" / "dev", {
        "u1": str(plain), "u2": f"cat {shlex.quote(str(piped))} |", "u3": ark_entry, "u4": python_pipe,
    })
    out = tmp_path / "dump" / "raw" / "dev"
    assert main(["--pair", str(data), str(out), "--fs", "16k", "--nj", "2"]) == 0
    scp = _table(out / "wav.scp")
    assert ":" in ark_entry and scp["u1"] == str(plain.resolve())  # a plain file at --fs: referenced, not copied
    for key in ("u2", "u3", "u4"):
        assert scp[key] == str(out.resolve() / "data" / f"{key}.flac")
    for key, path in scp.items():
        read, rate = soundfile.read(path, dtype="float32")
        assert rate == 16000 and read.shape == wave.shape, key
        assert np.max(np.abs(read - wave)) < 1e-3, key  # 16-bit copies of the same sine
    assert _table(out / "utt2num_samples") == {k: "8000" for k in scp}
    assert _table(out / "text") == {k: "a b" for k in scp}
    assert (out / "spk2utt").read_text() == "spk1 u1\nspk2 u2\nspk3 u3\nspk4 u4\n"
    assert (out / "feats_type").read_text() == "raw\n"
    assert not list(tmp_path.glob("dump/raw/*.tmp"))


def test_segments_cut_a_long_recording_into_utterances(tmp_path):
    rate = 16000
    recording = np.concatenate([_sine(1.0, rate, 300), _sine(1.0, rate, 600), _sine(1.5, rate, 900)])
    soundfile.write(tmp_path / "long.wav", recording, rate, subtype="FLOAT")
    data = _data_dir(tmp_path / "data" / "train", {"rec1": str(tmp_path / "long.wav")},
                     texts={"rec1-seg0": "a", "rec1-seg1": "b c"})
    (data / "segments").write_text("rec1-seg0 rec1 0.0 1.0\nrec1-seg1 rec1 1.25 2.5\n")
    (data / "reco2dur").write_text("rec1 3.5\n")
    out = tmp_path / "dump" / "raw" / "org" / "train"
    assert format_data_dir(data, out, fs="16000", audio_format="wav") == (2, 2)
    scp = _table(out / "wav.scp")
    assert sorted(scp) == ["rec1-seg0", "rec1-seg1"]  # the segment ids
    first, _ = soundfile.read(scp["rec1-seg0"], dtype="float32")
    second, _ = soundfile.read(scp["rec1-seg1"], dtype="float32")
    assert scp["rec1-seg1"].endswith("rec1-seg1.wav") and len(first) == 16000 and len(second) == 20000
    assert np.max(np.abs(first - recording[:16000])) < 1e-3
    assert np.max(np.abs(second - recording[20000:40000])) < 1e-3
    assert _table(out / "utt2num_samples") == {"rec1-seg0": "16000", "rec1-seg1": "20000"}
    assert not (out / "segments").exists() and not (out / "reco2dur").exists()


def test_8khz_audio_is_resampled_to_16khz(tmp_path):
    wave8k = _sine(0.75, 8000, freq=440.0)
    soundfile.write(tmp_path / "a.wav", wave8k, 8000, subtype="PCM_16")
    data = _data_dir(tmp_path / "data" / "test", {"u1": f"cat {tmp_path / 'a.wav'} |"})
    out = tmp_path / "dump" / "test"
    format_data_dir(data, out)
    wave, rate = soundfile.read(_table(out / "wav.scp")["u1"], dtype="float32")
    assert rate == 16000 and len(wave) == 2 * len(wave8k) == 12000
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * 16000 / len(wave) - 440.0) < 2.0  # the same tone
    middle = slice(1000, -1000)  # away from the resampler's edges
    assert np.sqrt(np.mean(wave[middle] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    assert np.max(np.abs(wave[middle] - _sine(0.75, 16000)[middle])) < 0.01


def test_stereo_and_nan_entries_are_named_with_file_and_line(tmp_path):
    soundfile.write(tmp_path / "ok.wav", _sine(0.3, 16000), 16000)
    soundfile.write(tmp_path / "stereo.wav", np.stack([_sine(0.3, 16000)] * 2, axis=1), 16000)
    nan = _sine(0.3, 16000)
    nan[100] = np.nan
    soundfile.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    data = _data_dir(tmp_path / "data" / "dev", {
        "u1": str(tmp_path / "ok.wav"), "u2": str(tmp_path / "stereo.wav"), "u3": f"cat {tmp_path / 'nan.wav'} |",
        "u4": f"cat {tmp_path / 'missing.wav'} |",
    })
    out = tmp_path / "dump" / "dev"
    with pytest.raises(DataPrepError) as error:
        format_data_dir(data, out)
    message = str(error.value)
    assert f"{data / 'wav.scp'}:2: u2: 2 channels" in message
    assert f"{data / 'wav.scp'}:3: u3: 1 of 4800 samples are NaN or infinite" in message
    assert f"{data / 'wav.scp'}:4: u4: unreadable" in message and "exited with 1" in message
    assert "3 of 4 utterances cannot be formatted" in message
    assert not out.exists() and not list(out.parent.glob("*.tmp"))  # nothing written
    assert format_data_dir(data, out, on_error="skip") == (1, 0)
    assert list(_table(out / "wav.scp")) == ["u1"] and list(_table(out / "text")) == ["u1"]
    skipped = (out / "skipped.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in skipped] == ["u2", "u3", "u4"]


def test_bad_segments_and_options_are_named(tmp_path):
    soundfile.write(tmp_path / "a.wav", _sine(1.0, 16000), 16000)
    data = _data_dir(tmp_path / "data" / "x", {"rec": str(tmp_path / "a.wav")}, texts={"s1": "a", "s2": "b"})
    (data / "segments").write_text("s1 rec 0.0 0.5\ns2 other 0.5 1.0\n")
    with pytest.raises(DataPrepError, match=rf"{data / 'segments'}:2: s2: recording other is not in"):
        format_data_dir(data, tmp_path / "out")
    (data / "segments").write_text("s1 rec 0.0 0.5\ns2 rec 0.9 0.5\n")
    with pytest.raises(DataPrepError, match=r"segments:2: s2: need 0 <= start < end"):
        format_data_dir(data, tmp_path / "out")
    (data / "segments").write_text("s1 rec 0.0 0.5\ns2 rec 3.0 4.0\n")
    with pytest.raises(DataPrepError, match=r"segments:2: s2: 3-4 s lies outside recording rec \(1.000 s\)"):
        format_data_dir(data, tmp_path / "out")
    assert parse_fs("16k") == parse_fs("16000") == parse_fs(16000) == 16000 and parse_fs("8k") == 8000
    with pytest.raises(DataPrepError, match="--fs 'fast': not a sampling rate"):
        parse_fs("fast")
    with pytest.raises(DataPrepError, match="--audio_format mp3"):
        format_data_dir(data, tmp_path / "out", audio_format="mp3")


def test_stage_4_filters_the_dump_into_espnets_place(tmp_path):
    """--pair dump/raw/org/<set> dump/raw/<set>: lengths from utt2num_samples, the audio left where stage 3 put it."""
    entries = {}
    for key, seconds in (("u1", 0.05), ("u2", 0.5), ("u3", 1.5)):
        soundfile.write(tmp_path / f"{key}.wav", _sine(seconds, 8000), 8000)
        entries[key] = f"cat {tmp_path / f'{key}.wav'} |"
    data = _data_dir(tmp_path / "data" / "train", entries)
    org, out = tmp_path / "dump" / "raw" / "org" / "train", tmp_path / "dump" / "raw" / "train"
    format_data_dir(data, org)
    assert filter_main(["--pair", str(org), str(out), "--max_wav_duration", "1.0", "--fs", "16k"]) == 0
    assert list(_table(out / "wav.scp")) == ["u2"] and _table(out / "wav.scp")["u2"].startswith(str(org.resolve()))
    assert _table(out / "utt2num_samples") == {"u2": "8000"} and list(_table(out / "text")) == ["u2"]
    assert (out / "filtered.txt").read_text().splitlines() == [
        "u1\t0.050 s, not above --min_wav_duration 0.1", "u3\t1.500 s, not below --max_wav_duration 1",
    ]
    assert not (out / "org").exists() and not (out / "data").exists()
    assert len(_table(org / "wav.scp")) == 3  # the unfiltered dump, filtered again by a re-run
    assert filter_main(["--pair", str(org), str(out), "--max_wav_duration", "2"]) == 0
    assert list(_table(out / "wav.scp")) == ["u2", "u3"]
