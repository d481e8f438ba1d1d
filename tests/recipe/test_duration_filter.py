"""Stage 4: ESPnet's duration filter on a prepared data directory (espnet_lrsms.bin.filter_durations)."""
import logging

import numpy as np
import soundfile

from espnet_lrsms.bin.filter_durations import main
from espnet_lrsms.fileio import read_kaldi_table

FS = 16000
# samples: ESPnet keeps int(0.1·fs)=1600 < n < int(20·fs)=320000
LENGTHS = {"a-short": 1600, "a-just": 1601, "b-long": 319999, "b-toolong": 320000, "c-mid": 8000}


def _data_dir(root, lengths=LENGTHS, avsr=False, name="train"):
    audio = root / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    data = root / "data" / name
    data.mkdir(parents=True)
    tables = {"wav.scp": {}, "text": {}, "utt2spk": {}}
    if avsr:
        tables.update({"video.scp": {}, "utt2num_video_frames": {}})
    for uttid, n in lengths.items():
        path = audio / f"{uttid}.wav"
        soundfile.write(path, np.zeros(n, dtype=np.int16), FS, subtype="PCM_16")
        tables["wav.scp"][uttid] = str(path)
        tables["text"][uttid] = f"WORDS OF {uttid.upper()}"
        tables["utt2spk"][uttid] = uttid.split("-")[0]
        if avsr:
            tables["video.scp"][uttid] = str(root / "roi" / f"{uttid}.npy")
            tables["utt2num_video_frames"][uttid] = str(n // 640)
    for name_, table in tables.items():
        (data / name_).write_text("".join(f"{k} {v}\n" for k, v in sorted(table.items())))
    (data / "spk2utt").write_text("stale\n")
    (data / "skipped.txt").write_text("z-broken\tunreadable\tbad header\n")
    (data / "feats_type").write_text("raw\n")
    return data


def _run(data, *bounds, nj=1):
    return main(["--data_dir", str(data), *bounds, "--nj", str(nj)])


def test_espnets_bounds_are_exclusive(tmp_path):
    data = _data_dir(tmp_path)
    assert _run(data, nj=2) == 0  # ESPnet's defaults 0.1 and 20 s, headers read in 2 processes
    kept = ["a-just", "b-long", "c-mid"]
    for table in ("wav.scp", "text", "utt2spk"):
        assert sorted(read_kaldi_table(data / table)) == kept
    assert (data / "spk2utt").read_text() == "a a-just\nb b-long\nc c-mid\n"
    assert (data / "filtered.txt").read_text() == (
        "a-short\t0.100 s, not above --min_wav_duration 0.1\n"
        "b-toolong\t20.000 s, not below --max_wav_duration 20\n"
    )
    assert (data / "skipped.txt").read_text() == "z-broken\tunreadable\tbad header\n"  # stage 1's, copied
    assert (data / "feats_type").read_text() == "raw\n"  # not a per-utterance table: copied
    assert sorted(read_kaldi_table(data / "org" / "wav.scp")) == sorted(LENGTHS)  # the unfiltered set, kept
    assert not (data.parent / "train.tmp").exists()


def test_avsr_tables_and_rerun_with_other_bounds(tmp_path):
    data = _data_dir(tmp_path, avsr=True)
    assert _run(data, "--min_wav_duration", "0.4", "--max_wav_duration", "1") == 0
    for table in ("wav.scp", "video.scp", "utt2num_video_frames", "text", "utt2spk"):
        assert sorted(read_kaldi_table(data / table)) == ["c-mid"], table
    assert read_kaldi_table(data / "video.scp")["c-mid"] == str(tmp_path / "roi" / "c-mid.npy")

    # a re-run starts from org/: wider bounds bring the utterances back; the same bounds give the same set
    snapshot = {p.name: p.read_text() for p in data.iterdir() if p.is_file()}
    assert _run(data, "--min_wav_duration", "0", "--max_wav_duration", "30") == 0
    assert sorted(read_kaldi_table(data / "video.scp")) == sorted(LENGTHS)
    assert (data / "filtered.txt").read_text() == ""
    assert not (data / "org" / "org").exists()
    assert _run(data, "--min_wav_duration", "0.4", "--max_wav_duration", "1") == 0
    assert {p.name: p.read_text() for p in data.iterdir() if p.is_file()} == snapshot


def test_lengths_from_utt2num_samples(tmp_path):
    data = _data_dir(tmp_path, lengths={"a-1": 8000, "a-2": 8000})
    (data / "utt2num_samples").write_text("a-1 1000\na-2 8000\n")  # read instead of the headers
    assert _run(data) == 0
    assert sorted(read_kaldi_table(data / "wav.scp")) == ["a-2"]
    assert read_kaldi_table(data / "utt2num_samples") == {"a-2": "8000"}


def test_empty_set_names_set_and_bounds(tmp_path, caplog):
    data = _data_dir(tmp_path, lengths={"a-1": 800, "a-2": 1000})
    before = (data / "wav.scp").read_text()
    with caplog.at_level(logging.ERROR):
        assert _run(data, "--max_wav_duration", "5") == 1
    assert "set train: the duration filter (--min_wav_duration 0.1 --max_wav_duration 5) leaves none" in caplog.text
    assert (data / "wav.scp").read_text() == before and not (data / "org").exists()


def test_stage_1_filter_list_is_extended(tmp_path):
    data = _data_dir(tmp_path, lengths={"a-1": 800, "a-2": 8000})
    (data / "filtered.txt").write_text("a-0\t0.010 s, not above --min_wav_duration 0.1\n")
    assert _run(data) == 0
    assert (data / "filtered.txt").read_text().splitlines() == [
        "a-0\t0.010 s, not above --min_wav_duration 0.1", "a-1\t0.050 s, not above --min_wav_duration 0.1"]


def test_empty_transcripts_are_left_out_as_espnet_does(tmp_path):
    data = _data_dir(tmp_path, lengths={"a-1": 8000, "a-2": 8000})
    (data / "text").write_text("a-1\na-2 WORDS\n")
    assert _run(data) == 0
    assert read_kaldi_table(data / "text") == {"a-2": "WORDS"}
    assert (data / "filtered.txt").read_text() == "a-1\t0.500 s, empty transcript\n"
